"""basketcast_daily past the quality gate on Spark: Feast, training and prediction read the
Spark build, with no DuckDB warehouse of the same data.

The `spark_shop` fixture (conftest.py) builds one shop on DuckDB and on Spark in one home.
First the inputs the ML jobs read are compared between the two builds (ml_jobs.sources). Then,
with BASKETCAST_DBT_TARGET=spark as a Spark deployment sets it, the DuckDB warehouse and the
Parquet exports are moved aside for the rest of the module, so any read of them would fail:
`publish_features` materializes through Feast's Spark offline store, `predict_champions`
bootstraps and scores the models on the Spark tables, writing runs and predictions into a new
warehouse.duckdb (ml_jobs' own store), and `build_consumers` publishes them to Spark and builds
the consumer marts there. The online features and the predictions must equal what the same
steps make from the DuckDB build.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_jobs import features, pipeline
from ml_jobs import spark as spark_target
from ml_jobs.config import Paths
from ml_jobs.demand.data import load_demand_data
from ml_jobs.users import data as user_data
from ml_jobs.warehouse import PREDICTION_TABLES, connect

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)

# Columns that name or stamp a run rather than hold what it predicted.
RUN_STAMPS = ["run_id", "model_version", "predicted_at"]


def latest_predictions(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every `_latest` prediction view, sorted by all columns but the run stamps."""
    out = {}
    with connect(warehouse, read_only=True) as con:
        for table in PREDICTION_TABLES:
            frame = con.execute(f"select * from predictions.{table}_latest").df()
            frame = frame.drop(columns=RUN_STAMPS)
            out[table] = frame.sort_values(list(frame.columns), ignore_index=True)
    return out


def online_users(paths: Paths, offline: str) -> tuple[pd.DataFrame, list[int]]:
    """Online features of every user of the shop, and the users."""
    with connect(paths.warehouse, read_only=True) as con:
        users = sorted(r[0] for r in con.execute("select user_id from marts.dim_users").fetchall())
    return features.online_features(paths, "user", users, offline=offline), users


@pytest.fixture(scope="module")
def shop(spark_shop: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Reference reads and runs on DuckDB, then the daily steps on Spark with DuckDB aside."""
    home = spark_shop
    ref: dict = {}
    # On DuckDB: the features online and the champions' predictions (bootstrapped the first
    # time; test_dbt_spark.py may have done that already, with the same fast models).
    pipeline.publish_features(home, target="duckdb")
    pipeline.predict_champions(home, target="duckdb")
    ref["online"], users = online_users(home, "duckdb")
    ref["predictions"] = latest_predictions(home.warehouse)
    for target in ("duckdb", "spark"):
        catalog = user_data.load_catalog(home, target)
        ref[target] = {
            "demand": load_demand_data(home, target=target),
            "catalog": catalog,
            "events": user_data.load_events(home, catalog, batch_rows=97, target=target),
            "labels": user_data.load_labels(home, target),
        }

    aside = tmp_path_factory.mktemp("duckdb-aside")
    moved = [home.warehouse, home.exports]
    for path in moved:
        shutil.move(path, aside / path.name)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("BASKETCAST_DBT_TARGET", "spark")
            ref["materialized"] = pipeline.publish_features(home)
            ref["summary"] = pipeline.predict_champions(home)
            pipeline.build_consumers(home)
            ref["spark_online"] = features.online_features(home, "user", users)
            ref["spark_predictions"] = latest_predictions(home.warehouse)
            yield ref
    finally:
        home.warehouse.unlink(missing_ok=True)
        Path(f"{home.warehouse}.wal").unlink(missing_ok=True)
        shutil.rmtree(home.exports, ignore_errors=True)
        for path in moved:
            shutil.move(aside / path.name, path)


def test_demand_history_reads_the_same_from_spark(shop: dict) -> None:
    duck, spark = shop["duckdb"]["demand"], shop["spark"]["demand"]
    assert spark.as_of == duck.as_of and len(duck.history) > 0
    pd.testing.assert_frame_equal(spark.history, duck.history, check_dtype=False, atol=1e-9)
    assert (spark.promotions is None) == (duck.promotions is None)
    if duck.promotions is not None:
        pd.testing.assert_frame_equal(spark.promotions, duck.promotions, check_dtype=False)


def test_event_log_and_training_set_read_the_same_from_spark(shop: dict) -> None:
    duck, spark = shop["duckdb"], shop["spark"]
    np.testing.assert_array_equal(spark["catalog"].item_ids, duck["catalog"].item_ids)
    for field in ("user", "seconds", "item", "category", "kind", "price"):
        left, right = getattr(duck["events"], field), getattr(spark["events"], field)
        assert right.dtype == left.dtype, field
        np.testing.assert_array_equal(right, left, err_msg=field)
    assert spark["events"].origin == duck["events"].origin
    assert spark["events"].last_day == duck["events"].last_day
    assert len(duck["labels"]) > 0
    pd.testing.assert_frame_equal(spark["labels"], duck["labels"], check_dtype=False)


def test_features_materialize_online_from_the_spark_tables(shop: dict) -> None:
    assert shop["materialized"] > 0
    duck, spark = shop["online"], shop["spark_online"]
    found = duck.drop(columns="user_id").notna().any(axis=1)
    assert found.mean() > 0.5  # most users have a snapshot: not a comparison of empty reads
    pd.testing.assert_frame_equal(spark, duck, atol=1e-9)


def test_models_train_and_predict_on_spark_inputs_as_on_duckdb(shop: dict) -> None:
    """The bootstrap trained every product from the Spark tables (there was no DuckDB
    warehouse), and the champions predict what they predict from the DuckDB build."""
    assert "bootstrap" in shop["summary"]["item_demand_forecast"]
    assert "bootstrap" in shop["summary"]["user_models"]
    for table, duck in shop["predictions"].items():
        spark = shop["spark_predictions"][table]
        assert len(duck) > 0, table
        pd.testing.assert_frame_equal(spark, duck, check_dtype=False, rtol=1e-6, obj=table)


def test_consumer_marts_on_spark_read_the_spark_trained_runs(shop: dict, spark_shop: Paths) -> None:
    session = spark_target.session(spark_shop)
    runs = {r[0] for r in spark_target.query(session, "select run_id from ml.model_runs")}
    with connect(spark_shop.warehouse, read_only=True) as con:
        local = {r[0] for r in con.execute("select run_id from ml.model_runs").fetchall()}
        metric_runs = {
            r[0] for r in con.execute("select distinct run_id from ml.backtest_metrics").fetchall()
        }
    assert runs == local
    published = spark_target.query(session, "select distinct run_id from ml.backtest_metrics")
    assert metric_runs and metric_runs <= {r[0] for r in published}
    forecast_runs = spark_target.query(
        session, "select distinct run_id from consumers.inventory_replenishment_plan"
    )
    assert forecast_runs and {r[0] for r in forecast_runs} <= local
