"""The same dbt project builds on Spark (local session) and agrees with the DuckDB build, from
the warehouse through the quality gate, the prediction write-back and the consumer marts.

A tiny synthetic shop is built twice from the same raw files: on DuckDB and on Spark
(`--target spark`, dbt-spark `method: session`), which reads the raw Parquet through external
tables and stores its tables as Parquet under $BASKETCAST_HOME/spark-warehouse. Key marts must
hold the same rows, numbers equal within float rounding. Then the models train and predict on
DuckDB, the consumer marts are built there, the same prediction rows and registry are written
to Spark (`ml_jobs.spark.publish_predictions`) and the consumer marts are built on Spark: each
must equal DuckDB's row for row. Skipped when pyspark or Java is missing. The build is the
`spark_shop` fixture of conftest.py, shared with test_features_spark.py: one JVM (and Derby
metastore) for the whole run.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_jobs import dbt_runner, pipeline
from ml_jobs import spark as spark_target
from ml_jobs.config import Paths
from ml_jobs.warehouse import connect

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)

# table -> its key, the order rows are compared in
TABLES = {
    "marts.fct_item_daily_demand": "item_id, demand_date",
    "marts.fct_user_daily_activity": "user_id, activity_date",
    "marts.dim_items": "item_id",
    "marts.user_features": "user_id, feature_ts",
    "marts.item_features": "item_id, feature_ts",
    "ml.ml_user_propensity_labels": "user_id, cutoff_ts",
}


def duck(paths: Paths, table: str, order: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(f"select * from {table} order by {order}").df()


def spark(paths: Paths, table: str, order: str) -> pd.DataFrame:
    schema, name = table.split(".")
    files = paths.home / "spark-warehouse" / f"{schema}.db" / name
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(f"select * from read_parquet('{files}/*.parquet') order by {order}").df()


def is_temporal(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    present = values.dropna()
    return len(present) > 0 and all(isinstance(v, date) for v in present)


def comparable(values: pd.Series) -> np.ndarray:
    """Dates and timestamps (aware, naive UTC, or date objects) as UTC text; others as they are."""
    if is_temporal(values):
        stamps = pd.to_datetime(values, utc=True).dt.tz_localize(None)
        text = stamps.astype("datetime64[us]").astype(str)
        return text.where(stamps.notna(), None).to_numpy()
    return values.to_numpy()


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame, name: str) -> None:
    """Same rows in the same order; numbers (and booleans) within 1e-9, the rest as text."""
    assert len(left) == len(right), name
    for column in left.columns:
        a, b = comparable(left[column]), comparable(right[column])
        numeric = pd.api.types.is_numeric_dtype(left[column])
        if numeric or pd.api.types.is_bool_dtype(left[column]):
            np.testing.assert_allclose(
                pd.Series(a).astype("float64").to_numpy(),
                pd.Series(b).astype("float64").to_numpy(),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=f"{name}.{column}",
            )
        else:
            text = [[None if pd.isna(x) else str(x) for x in v] for v in (a, b)]
            assert text[0] == text[1], f"{name}.{column}"


@pytest.mark.parametrize("table", list(TABLES))
def test_spark_build_equals_duckdb(spark_shop: Paths, table: str) -> None:
    left, right = duck(spark_shop, table, TABLES[table]), spark(spark_shop, table, TABLES[table])
    assert list(left.columns) == list(right.columns)
    assert len(left) > 0
    assert_same_rows(left, right, table)


# --- past dbt: quality gate, prediction write-back, consumer marts --------------------------

# consumer mart -> its key, the order rows are compared in
CONSUMERS = {
    "consumers.inventory_replenishment_plan": "item_id",
    "consumers.ads_audiences": "category_id, audience_rank",
    "consumers.marketing_segments": "as_of_date, user_id",
    "consumers.marketing_segment_sizes": "as_of_date, segment_order",
    "consumers.unmet_demand": "demand_rank",
}
# prediction table -> its key
PREDICTIONS = {
    "item_demand_forecast": "run_id, as_of_date, item_id, target_date",
    "user_purchase_propensity": "run_id, as_of_date, user_id",
    "user_category_affinity": "run_id, as_of_date, user_id, category_id",
    "user_item_recommendations": "run_id, as_of_date, user_id, item_id",
}


def spark_table(paths: Paths, table: str, order: str) -> pd.DataFrame:
    session = spark_target.session(paths)
    return session.sql(f"select * from {table} order by {order}").toPandas()


@pytest.fixture(scope="module")
def published(spark_shop: Paths) -> Paths:
    """Models trained and predicting on DuckDB, consumers built there and then on Spark."""
    pipeline.publish_features(spark_shop)
    pipeline.predict_champions(spark_shop)
    dbt_runner.build_consumers(spark_shop)
    pipeline.build_consumers(spark_shop, target="spark")
    return spark_shop


@pytest.mark.parametrize("table", list(CONSUMERS))
def test_spark_consumer_mart_equals_duckdb(published: Paths, table: str) -> None:
    left = duck(published, table, CONSUMERS[table])
    right = spark_table(published, table, CONSUMERS[table])
    # A partition column is stored last on Spark (marketing_segments' as_of_date).
    assert sorted(right.columns) == sorted(left.columns)
    assert len(left) > 0
    assert_same_rows(left, right[list(left.columns)], table)


@pytest.mark.parametrize("table", list(PREDICTIONS))
def test_spark_prediction_table_equals_duckdb(published: Paths, table: str) -> None:
    for name in (f"predictions.{table}", f"predictions.{table}_latest"):
        order = PREDICTIONS[table]
        left, right = duck(published, name, order), spark_table(published, name, order)
        assert list(right.columns) == list(left.columns), name
        assert len(left) > 0, name
        assert_same_rows(left, right, name)
    session = spark_target.session(published)
    kinds = [
        (f.name, f.dataType.simpleString()) for f in session.table(f"predictions.{table}").schema
    ]
    assert kinds == spark_target.prediction_columns(table)


def test_publishing_again_writes_only_the_registry(published: Paths) -> None:
    written = spark_target.publish_predictions(published, spark_target.session(published))
    assert set(written) == {"ml.model_runs"}


def test_a_second_consumer_build_on_spark_keeps_one_block_per_as_of_date(
    published: Paths,
) -> None:
    """marketing_segments is incremental: a rebuild on Spark replaces its as-of date's rows."""
    pipeline.build_consumers(published, target="spark")
    for table in ("consumers.marketing_segments", "consumers.marketing_segment_sizes"):
        left = duck(published, table, CONSUMERS[table])
        right = spark_table(published, table, CONSUMERS[table])
        assert_same_rows(left, right[list(left.columns)], table)


def test_spark_write_replaces_one_run_and_date_atomically(published: Paths) -> None:
    """Rewriting a (run, as-of date) replaces its rows only; one table folder stays."""
    session = spark_target.session(published)
    table = "user_item_recommendations"
    before = spark_table(published, f"predictions.{table}", "run_id")

    def rows(day: date, scores: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "run_id": "replace-check",
                "model_name": "check",
                "model_version": "1",
                "as_of_date": day,
                "predicted_at": pd.Timestamp(day, tz="UTC"),
                "user_id": range(1, len(scores) + 1),
                "item_id": 7,
                "score": scores,
                "rank": range(1, len(scores) + 1),
            }
        )

    first, second = date(2026, 3, 1), date(2026, 3, 2)
    spark_target.write_predictions(session, table, rows(first, [0.5, 0.4]))
    spark_target.write_predictions(session, table, rows(second, [0.3, 0.2]))
    spark_target.write_predictions(session, table, rows(second, [0.9, 0.8, 0.7]))
    check = session.sql(
        f"""select cast(as_of_date as string) as day, score from predictions.{table}
            where run_id = 'replace-check' order by day, score"""
    ).toPandas()
    assert check.values.tolist() == [
        ["2026-03-01", 0.4],
        ["2026-03-01", 0.5],
        ["2026-03-02", 0.7],
        ["2026-03-02", 0.8],
        ["2026-03-02", 0.9],
    ]
    after = spark_table(published, f"predictions.{table}", "run_id")
    assert_same_rows(
        before, after[after["run_id"] != "replace-check"].reset_index(drop=True), table
    )
    base = session.catalog.getDatabase("predictions").locationUri.removeprefix("file:")
    folders = [p for p in Path(base, table).iterdir() if p.is_dir()]
    assert len(folders) == 1


def test_quality_gate_reads_the_spark_build(spark_shop: Paths) -> None:
    """The gate passes on Spark with the same counts as on DuckDB, and a full refresh on
    Spark appends its load to audit.reconciliation instead of replacing the history."""
    counts = pipeline.quality_gate(spark_shop, target="spark")
    assert counts == pipeline.quality_gate(spark_shop)
    assert counts["events"]["clean"] > 0  # type: ignore[index]

    dbt_runner.run_dbt(
        ["run", "--select", "reconciliation", "--full-refresh"], spark_shop, target="spark"
    )
    session = spark_target.session(spark_shop)
    loads = spark_target.query(session, "select count(distinct load_id) from audit.reconciliation")
    assert loads == [(2,)]
    assert pipeline.quality_gate(spark_shop, target="spark") == counts


def test_spark_session_refuses_a_second_home(spark_shop: Paths, tmp_path: Path) -> None:
    spark_target.session(spark_shop)
    with pytest.raises(spark_target.SparkTargetError, match="process of its own"):
        spark_target.session(Paths(tmp_path))


def test_a_cluster_profile_gives_python_the_feast_yamls_session(
    spark_shop: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the spark output on a Thrift server (a cluster; DBT_PROFILES_DIR names the
    deployment's profile) the Python steps take the session Feast's Spark offline store opens
    from feature_store.spark.yaml, and read the catalog dbt built through it. Here that YAML
    names this home's local catalog, so the session is the one already running."""
    import yaml

    output = {"type": "spark", "method": "thrift", "host": "spark-thrift.internal"}
    profile = {"target": "spark", "outputs": {"spark": {**output, "schema": "basketcast"}}}
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump({"basketcast": profile}))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path))
    assert spark_target.profile_output(spark_shop)["method"] == "thrift"

    session = spark_target.session(spark_shop)
    running = session.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    assert running.rstrip("/") == str(spark_shop.home / "spark-warehouse")
    assert session.conf.get("spark.sql.ansi.enabled") == "false"
    assert spark_target.query(session, "select count(*) from marts.dim_items") == [(12,)]
