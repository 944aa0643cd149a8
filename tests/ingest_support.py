"""Helpers the ingest tests share: the demand job they run, raw and warehouse reads."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
from rich.console import Console

from ml_jobs.config import Paths
from ml_jobs.demand import DemandJobConfig
from ml_jobs.demand.xgb import XGBoostQuantileParams
from ml_jobs.ingest.completejourney import CompleteJourneyConfig

QUIET = Console(quiet=True)
MAPPING = Path(__file__).resolve().parents[1] / "examples" / "mappings" / "online_retail.yml"
SLICE = CompleteJourneyConfig(
    top_products=30, households=100, start=dt.date(2017, 1, 1), end=dt.date(2017, 5, 31)
)
JOB = DemandJobConfig(
    models=("seasonal_naive", "xgboost_quantile"),
    nthread=1,
    xgboost=XGBoostQuantileParams(num_boost_round=60, nthread=1),
)
# Run only what the demand job reads and the load audit (the dbt tests have their own module).
DBT_SELECT = ["run", "--select", "+fct_item_daily_demand", "+reconciliation", "+fct_user_campaigns"]


def use_home(paths: Paths) -> None:
    os.environ["BASKETCAST_HOME"] = str(paths.home)


def one(query: str) -> tuple:
    con = duckdb.connect()
    try:
        return con.execute(query).fetchone()
    finally:
        con.close()


def raw(paths: Paths, table: str) -> str:
    return f"read_parquet('{paths.raw_table(table)}/*.parquet')"


def raw_df(paths: Paths, table: str):
    con = duckdb.connect()
    try:
        return con.execute(f"select * from {raw(paths, table)}").df()
    finally:
        con.close()


def warehouse_count(paths: Paths, table: str) -> int:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])
    finally:
        con.close()


def assert_forecast_invariants(paths: Paths, n_items: int, horizon: int) -> None:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        rows = con.execute(
            "select model_name, count(*), count(distinct item_id), min(horizon), max(horizon), "
            "sum(case when p10 < 0 or p10 > p50 or p50 > p90 or p50 is null then 1 else 0 end) "
            "from predictions.item_demand_forecast group by model_name order by model_name"
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == sorted(JOB.models)
    for _, count, items, low, high, broken in rows:
        assert (count, items, low, high, broken) == (n_items * horizon, n_items, 1, horizon, 0)
