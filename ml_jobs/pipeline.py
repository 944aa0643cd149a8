"""The daily pipeline as plain functions, one per step, in the order data flows.

raw files → dbt build (staging, marts, feature exports) → Feast apply + materialize →
demand models (backtest, train, predict, write-back) → dbt build of consumer marts.

The CLI, the Airflow DAG and the tests all call these same functions.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import duckdb

from ml_jobs.config import RAW_TABLES, Paths


class MissingInputError(RuntimeError):
    """A step was asked to run before the step that feeds it."""


def raw_is_present(paths: Paths) -> bool:
    """True when every raw table has at least one Parquet file."""
    return all(any(paths.raw_table(t).glob("*.parquet")) for t in RAW_TABLES)


def generate(paths: Paths, **sizes: int) -> dict[str, int]:
    """Write a synthetic shop into the raw layer; `sizes` override ShopConfig fields."""
    from ml_jobs.generate import ShopConfig, generate_shop

    return generate_shop(ShopConfig(**sizes), paths)


def build_warehouse(paths: Paths) -> None:
    """dbt build of staging, marts and the feature exports (everything but consumers)."""
    from ml_jobs import dbt_runner

    if not raw_is_present(paths):
        missing = [t for t in RAW_TABLES if not any(paths.raw_table(t).glob("*.parquet"))]
        raise MissingInputError(
            f"no raw Parquet for {missing} under {paths.raw}: run `basketcast generate` "
            "or an ingest adapter first"
        )
    dbt_runner.build_warehouse(paths)


def feature_window_end(paths: Paths) -> datetime:
    """Just after the newest feature snapshot dbt exported: the end of what to materialize."""
    files = [paths.exports / "user_features.parquet", paths.exports / "item_features.parquet"]
    absent = [str(f) for f in files if not f.exists()]
    if absent:
        raise MissingInputError(f"feature exports missing: {absent}; run `basketcast build`")
    con = duckdb.connect()
    try:
        newest = max(
            con.execute(f"select max(feature_ts) from read_parquet('{f}')").fetchone()[0]
            for f in files
        )
    finally:
        con.close()
    return newest.astimezone(UTC) + timedelta(seconds=1)


def publish_features(paths: Paths) -> int:
    """Register the Feast definitions and load the newest features into the online store."""
    from ml_jobs import features

    features.apply(paths)
    return features.materialize(paths, end=feature_window_end(paths))


def forecast_demand(paths: Paths) -> dict[str, object]:
    """Backtest, train and predict every demand model; write forecasts and registry rows."""
    from ml_jobs.demand.job import DemandJobConfig, run_demand_forecast

    result = run_demand_forecast(paths, DemandJobConfig())
    # A JSON-safe summary: the DAG passes it on as an XCom.
    return json.loads(json.dumps(asdict(result), default=str))


def build_consumers(paths: Paths) -> None:
    """dbt build of the consumer marts that read the `_latest` prediction views."""
    from ml_jobs import dbt_runner

    dbt_runner.build_consumers(paths)


def run_all(paths: Paths, generate_if_missing: bool = True) -> dict[str, object]:
    """Every step in order, in this process (the DAG runs the same steps as tasks)."""
    summary: dict[str, object] = {}
    if generate_if_missing and not raw_is_present(paths):
        summary["generate"] = generate(paths)
    build_warehouse(paths)
    summary["materialized"] = publish_features(paths)
    summary["forecast"] = forecast_demand(paths)
    build_consumers(paths)
    summary["finished_at"] = datetime.now(UTC).isoformat()
    return summary
