"""The same dbt project builds on Spark (local session) and agrees with the DuckDB build.

A tiny synthetic shop is built twice from the same raw files: on DuckDB and on Spark
(`--target spark`, dbt-spark `method: session`), which reads the raw Parquet through external
tables and stores its tables as Parquet under $BASKETCAST_HOME/spark-warehouse. Key marts must
hold the same rows, numbers equal within float rounding. Skipped when pyspark or Java is
missing. The consumer marts are left out as on Postgres (they need forecasts written back).
The build is the `spark_shop` fixture of conftest.py, shared with test_features_spark.py.
"""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

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


def comparable(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamps.astype("datetime64[us]").astype(str).to_numpy()
    return values.to_numpy()


@pytest.mark.parametrize("table", list(TABLES))
def test_spark_build_equals_duckdb(spark_shop: Paths, table: str) -> None:
    left, right = duck(spark_shop, table, TABLES[table]), spark(spark_shop, table, TABLES[table])
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right) and len(left) > 0
    for column in left.columns:
        a, b = comparable(left[column]), comparable(right[column])
        numeric = pd.api.types.is_numeric_dtype(left[column])
        if numeric or pd.api.types.is_bool_dtype(left[column]):
            np.testing.assert_allclose(
                a.astype(float),
                b.astype(float),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=f"{table}.{column}",
            )
        else:
            assert [str(x) for x in a] == [str(x) for x in b], f"{table}.{column}"
