"""End to end: a tiny synthetic shop through the real Airflow DAGs (`dag.test()`), real dbt on
DuckDB, real Feast (DuckDB offline store + SQLite online store) and the real models.

One daily + consumers run is shared by the tests of this module; the reruns, the weekly
training DAG and the failing quality gate build on it in order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_jobs import pipeline
from ml_jobs.airflow_local import DagRunFailed, backfill, run_dag
from ml_jobs.config import Paths

pytestmark = pytest.mark.e2e

HORIZON = 28
TINY_SHOP = {"users": 150, "items": 16, "days": 150, "seed": 11}


@pytest.fixture(scope="module")
def shop(module_home: Paths) -> Iterator[Paths]:
    os.environ["BASKETCAST_TASK_RETRIES"] = "0"  # a failing task fails the run at once
    pipeline.generate(module_home, **TINY_SHOP)
    logical = pipeline.next_logical_date(module_home)
    run_dag("basketcast_daily", module_home, logical_date=logical)
    run_dag("basketcast_consumers", module_home, logical_date=logical)
    yield module_home
    os.environ.pop("BASKETCAST_TASK_RETRIES", None)


def query(paths: Paths, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def content_checksum(paths: Paths, table: str, ignore: tuple[str, ...] = ()) -> str:
    """Order-independent checksum of a table's content, audit timestamps left out."""
    frame = query(paths, f"select * from {table}").drop(columns=list(ignore))
    rows = sorted(frame.astype(str).agg("|".join, axis=1))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_every_run_forecasts_every_item_for_every_horizon(shop: Paths) -> None:
    blocks = query(
        shop,
        """select run_id, as_of_date, count(*) as n_rows, count(distinct item_id) as n_items,
                  min(horizon) as h_min, max(horizon) as h_max
           from predictions.item_demand_forecast group by run_id, as_of_date""",
    )
    n_items = query(shop, "select count(*) as n from marts.dim_items")["n"].item()
    assert n_items == TINY_SHOP["items"]
    assert len(blocks) >= 2  # the seasonal-naive baseline and XGBoost, trained at bootstrap
    assert (blocks["n_rows"] == n_items * HORIZON).all()
    assert (blocks["n_items"] == n_items).all()
    assert (blocks["h_min"] == 1).all() and (blocks["h_max"] == HORIZON).all()
    assert str(blocks["as_of_date"].max().date()) == str(pipeline.raw_data_end(shop))


def test_forecast_quantiles_are_ordered_and_non_negative(shop: Paths) -> None:
    bad = query(
        shop,
        """select count(*) as n from predictions.item_demand_forecast
           where not (0 <= p10 and p10 <= p50 and p50 <= p90)
              or target_date <> as_of_date + horizon""",
    )
    assert bad["n"].item() == 0


PRODUCTS = (
    "item_demand_forecast",
    "user_purchase_propensity",
    "user_category_affinity",
    "user_item_recommendations",
)


def champions_per_product(paths: Paths) -> dict[str, int]:
    return {
        product: query(
            paths,
            f"""select count(*) as n from ml.model_runs where is_champion and run_id in
                (select run_id from predictions.{product})""",
        )["n"].item()
        for product in PRODUCTS
    }


def test_latest_views_show_each_products_one_champion_run(shop: Paths) -> None:
    runs = query(shop, "select * from ml.model_runs")
    assert set(runs["status"]) == {"succeeded"}
    assert champions_per_product(shop) == dict.fromkeys(PRODUCTS, 1)
    for product in PRODUCTS:
        latest = query(
            shop, f"select distinct run_id, as_of_date from predictions.{product}_latest"
        )
        champion = query(
            shop,
            f"""select run_id from ml.model_runs where is_champion and run_id in
                (select run_id from predictions.{product})""",
        )
        assert latest["run_id"].tolist() == champion["run_id"].tolist(), product


def test_replenishment_plan_covers_every_item_with_non_negative_orders(shop: Paths) -> None:
    plan = query(shop, "select * from consumers.inventory_replenishment_plan")
    assert len(plan) == TINY_SHOP["items"]
    assert plan["item_id"].is_unique
    assert (plan["recommended_order_qty"] >= 0).all()
    assert (plan["reorder_point"] >= plan["safety_stock"]).all()
    assert plan["stockout_risk"].between(0, 1).all()


def test_online_features_equal_newest_offline_values(shop: Paths) -> None:
    from ml_jobs import features

    users = query(
        shop,
        f"""select user_id from read_parquet('{shop.export_files("user_features")}')
            group by user_id order by count(*) desc limit 3""",
    )["user_id"].tolist()
    online = features.online_features(shop, "user", users).set_index("user_id").sort_index()
    offline = features.latest_offline_values(shop, "user", users).set_index("user_id").sort_index()
    shared = [c for c in offline.columns if c in online.columns]
    assert len(shared) >= 8
    pd.testing.assert_frame_equal(
        online[shared].astype(float), offline[shared].astype(float), check_dtype=False
    )


def test_user_predictions_are_written_with_champions(shop: Paths) -> None:
    propensity = query(shop, "select * from predictions.user_purchase_propensity_latest")
    assert len(propensity) > 0 and propensity["user_id"].is_unique
    assert propensity["p_purchase"].between(0, 1).all()
    assert (propensity["expected_spend"] >= 0).all()
    assert set(propensity["decile"]) <= set(range(1, 11))
    # Deciles rank users: the top decile's mean probability beats the bottom's.
    by_decile = propensity.groupby("decile")["p_purchase"].mean()
    assert by_decile.loc[by_decile.index.min()] > by_decile.loc[by_decile.index.max()]
    recs = query(shop, "select * from predictions.user_item_recommendations_latest")
    per_user = recs.groupby("user_id")["rank"].agg(["min", "max", "count"])
    assert (per_user["min"] == 1).all() and (per_user["count"] == per_user["max"]).all()
    assert recs["item_id"].isin(query(shop, "select item_id from marts.dim_items")["item_id"]).all()
    affinity = query(shop, "select * from predictions.user_category_affinity_latest")
    assert affinity.groupby("user_id")["rank"].min().eq(1).all()


def test_backtest_metrics_recorded_for_each_model(shop: Paths) -> None:
    metrics = query(
        shop,
        """select r.model_name, count(distinct m.cutoff) as cutoffs, count(distinct metric) as n
           from ml.backtest_metrics m join ml.model_runs r using (run_id)
           where r.run_id in (select run_id from predictions.item_demand_forecast)
           group by r.model_name""",
    )
    assert set(metrics["model_name"]) == {"seasonal_naive", "xgboost_quantile"}
    assert (metrics["cutoffs"] >= 2).all()
    assert (metrics["n"] >= 5).all()  # wape, mase, pinball per quantile, coverage, bias
    users = query(
        shop,
        """select distinct metric from ml.backtest_metrics m join ml.model_runs r using (run_id)
           where r.run_id in (select run_id from predictions.user_purchase_propensity)""",
    )["metric"]
    assert {"roc_auc", "log_loss"} <= set(users)


def test_example_queries_answer_on_the_published_tables(shop: Paths) -> None:
    from ml_jobs.demo import EXAMPLE_QUERIES, read_sql

    files = sorted(EXAMPLE_QUERIES.glob("*.sql"))
    assert len(files) >= 3
    for path in files:
        sql, title = read_sql(f"@{path}")
        answer = query(shop, sql)
        assert title and len(answer.columns) >= 3, path.name
        if "reorder" not in path.name:  # whether anything needs reordering depends on stock
            assert len(answer) > 0, path.name


def test_rerunning_a_date_leaves_the_warehouse_as_one_run_would(shop: Paths) -> None:
    tables = {
        "predictions.item_demand_forecast": ("predicted_at",),
        "predictions.user_purchase_propensity": ("predicted_at",),
        "consumers.inventory_replenishment_plan": (),
        "marts.fct_item_daily_demand": (),
    }
    before = {t: content_checksum(shop, t, ignore) for t, ignore in tables.items()}
    rows_before = query(shop, "select count(*) as n from predictions.item_demand_forecast")
    logical = pipeline.next_logical_date(shop)
    run_dag("basketcast_daily", shop, logical_date=logical)
    run_dag("basketcast_consumers", shop, logical_date=logical)
    after = {t: content_checksum(shop, t, ignore) for t, ignore in tables.items()}
    assert after == before
    rows_after = query(shop, "select count(*) as n from predictions.item_demand_forecast")
    assert rows_after["n"].item() == rows_before["n"].item()


def test_backfilling_earlier_days_adds_their_forecasts_and_keeps_the_newest_latest(
    shop: Paths,
) -> None:
    newest = pipeline.next_logical_date(shop)
    first = newest - timedelta(days=2)
    backfill("basketcast_daily", shop, first, newest - timedelta(days=1))
    blocks = query(
        shop,
        """select as_of_date, count(*) as n from predictions.item_demand_forecast
           where run_id = (select distinct run_id from predictions.item_demand_forecast_latest)
           group by as_of_date order by as_of_date""",
    )
    expected = [(newest - timedelta(days=d)).date() for d in (3, 2, 1)]
    assert [d.date() for d in pd.to_datetime(blocks["as_of_date"])] == expected
    assert blocks["n"].nunique() == 1  # every as-of date forecasts every item and horizon
    latest = query(shop, "select distinct as_of_date from predictions.item_demand_forecast_latest")
    assert pd.to_datetime(latest["as_of_date"]).dt.date.tolist() == [expected[-1]]
    test_online_features_equal_newest_offline_values(shop)  # the backfill left them newest


def test_weekly_training_registers_new_runs_and_keeps_one_champion(shop: Paths) -> None:
    runs_before = query(shop, "select count(*) as n from ml.model_runs")["n"].item()
    run_dag("basketcast_train", shop, logical_date=pipeline.next_logical_date(shop))
    runs = query(shop, "select * from ml.model_runs")
    assert len(runs) > runs_before
    assert set(runs["status"]) == {"succeeded"}
    assert runs.groupby("run_id").size().max() == 1
    assert champions_per_product(shop) == dict.fromkeys(PRODUCTS, 1)
    trained = set(runs["model_name"])
    assert "torch_quantile" in trained  # the weekly run brings the torch challenger


def test_failing_quality_gate_publishes_nothing(shop: Paths, tmp_path: Path) -> None:
    # A copy of the healthy shop whose next load brings 10% garbage events on its last day.
    home = Paths(tmp_path / "home")
    shutil.copytree(shop.home, home.home, ignore=shutil.ignore_patterns("airflow"))
    os.environ["BASKETCAST_HOME"] = str(home.home)
    try:
        events = pq.read_table(next(home.raw_table("events").glob("*.parquet")))
        n_bad = len(events) // 10
        newest = events.column("event_ts").to_pandas().max()
        bad = events.slice(0, n_bad)
        for name, values in {
            "event_type": pa.array(["teleport"] * n_bad, pa.string()),
            "event_id": pa.array(range(10**12, 10**12 + n_bad), pa.int64()),
            "event_ts": pa.array([newest] * n_bad, events.schema.field("event_ts").type),
        }.items():
            bad = bad.set_column(bad.schema.get_field_index(name), name, values)
        pq.write_table(bad, home.raw_table("events") / "part-99999.parquet")
        published = content_checksum(home, "predictions.item_demand_forecast")
        with pytest.raises(DagRunFailed):
            run_dag("basketcast_daily", home, logical_date=pipeline.next_logical_date(home))
        assert content_checksum(home, "predictions.item_demand_forecast") == published
        rejected = query(
            home,
            "select count(*) as n from audit.rejected_rows where source_table = 'events'",
        )
        assert rejected["n"].item() >= n_bad
    finally:
        os.environ["BASKETCAST_HOME"] = str(shop.home)
