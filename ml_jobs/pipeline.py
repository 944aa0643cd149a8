"""The daily pipeline as plain functions, one per step, in the order data flows.

raw files → dbt build (staging, marts, feature exports) → Feast apply + materialize →
demand models (backtest, train, predict, write-back) → dbt build of consumer marts.

The CLI, the Airflow DAG and the tests all call these same functions.
"""

from __future__ import annotations

import glob
import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import duckdb

from ml_jobs.config import RAW_TABLES, Paths


class MissingInputError(RuntimeError):
    """A step was asked to run before the step that feeds it."""


class QualityGateFailed(RuntimeError):
    """The newest load does not reconcile or rejected too much: nothing may be published."""


def raw_is_present(paths: Paths) -> bool:
    """True when every raw table has at least one Parquet file."""
    return all(any(paths.raw_table(t).glob("*.parquet")) for t in RAW_TABLES)


def raw_data_end(paths: Paths) -> date:
    """The last day the raw order lines cover: the natural logical date of a run on them."""
    if not raw_is_present(paths):
        raise MissingInputError(f"no raw data under {paths.raw}")
    con = duckdb.connect()
    try:
        glob = str(paths.raw_table("order_lines") / "*.parquet")
        (newest,) = con.execute("select max(order_ts) from read_parquet(?)", [glob]).fetchone()
    finally:
        con.close()
    if newest is None:
        raise MissingInputError(f"raw order_lines under {paths.raw} hold no rows")
    return newest.astimezone(UTC).date()


def next_logical_date(paths: Paths) -> datetime:
    """The logical date of the daily run that covers the newest raw day.

    A daily run's data interval ends at its logical date, so the run for day D is stamped
    D + 1 at 00:00 UTC.
    """
    return datetime.combine(raw_data_end(paths) + timedelta(days=1), datetime.min.time(), UTC)


def ingest(paths: Paths, generate_if_missing: bool = False) -> dict[str, int]:
    """Make sure the raw layer holds data; with `generate_if_missing`, a synthetic shop."""
    if raw_is_present(paths):
        return {}
    if not generate_if_missing:
        raise MissingInputError(
            f"no raw data under {paths.raw}: land files there (see docs/contracts.md), run an "
            "ingest adapter, or `basketcast generate`"
        )
    return generate(paths)


def generate(paths: Paths, **sizes: int) -> dict[str, int]:
    """Write a synthetic shop into the raw layer; `sizes` override ShopConfig fields."""
    from ml_jobs.generate import ShopConfig, generate_shop

    return generate_shop(ShopConfig(**sizes), paths)


def build_warehouse(paths: Paths, *, target: str | None = None, full_refresh: bool = False) -> None:
    """dbt build of staging, marts and the feature exports (everything but consumers).

    `target` picks the dbt profile output (default: the profile's, DuckDB unless
    BASKETCAST_DBT_TARGET says otherwise); `full_refresh` rebuilds the incremental models.
    """
    from ml_jobs import dbt_runner

    if not raw_is_present(paths):
        missing = [t for t in RAW_TABLES if not any(paths.raw_table(t).glob("*.parquet"))]
        raise MissingInputError(
            f"no raw Parquet for {missing} under {paths.raw}: run `basketcast generate` "
            "or an ingest adapter first"
        )
    dbt_runner.build_warehouse(paths, target=target, full_refresh=full_refresh)


NEWEST_LOAD_SQL = """select source_table, rows_in, rows_clean, rows_rejected
    from audit.reconciliation
    where loaded_at = (select max(loaded_at) from audit.reconciliation)
    order by source_table"""


def newest_load(paths: Paths, target: str | None = None) -> list[tuple]:
    """(source_table, rows_in, rows_clean, rows_rejected) of the newest load in
    `audit.reconciliation`, read from where `target` built the warehouse.

    `target` is a profile output as for `build_warehouse` (unset: BASKETCAST_DBT_TARGET, else
    DuckDB). On `spark` the table is read through the Spark catalog dbt built it in, on
    `postgres` from the Postgres database of the profile (BASKETCAST_PG_* settings); DuckDB
    otherwise.
    """
    from ml_jobs import spark

    resolved = spark.resolve_target(target)
    if resolved == "postgres":
        from ml_jobs.ingest.postgres import PostgresSettings

        settings = PostgresSettings.from_env()
        con = settings.connect()
        try:
            with con.cursor() as cur:
                cur.execute("select to_regclass('audit.reconciliation')")
                if cur.fetchone()[0] is None:
                    raise QualityGateFailed(
                        f"audit.reconciliation is missing from Postgres database "
                        f"{settings.database!r}: run dbt build --target postgres first"
                    )
                cur.execute(NEWEST_LOAD_SQL)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            con.close()
    if resolved == spark.SPARK_TARGET:
        session = spark.session(paths)
        if not session.catalog.tableExists("audit.reconciliation"):
            raise QualityGateFailed(
                "audit.reconciliation is missing from the Spark catalog of "
                f"{paths.home}: run the warehouse build (dbt build --target spark) first"
            )
        return spark.query(session, NEWEST_LOAD_SQL)
    from ml_jobs.warehouse import connect, table_exists

    with connect(paths.warehouse, read_only=True) as con:
        if not table_exists(con, "audit.reconciliation"):
            raise QualityGateFailed(
                f"audit.reconciliation is missing from {paths.warehouse}: run dbt build first"
            )
        return con.execute(NEWEST_LOAD_SQL).fetchall()


def quality_gate(
    paths: Paths, max_rejected_share: float = 0.05, *, target: str | None = None
) -> dict[str, object]:
    """Check the newest load in `audit.reconciliation` before anything is published.

    Fails when, for any raw table, rows in != rows clean + rows rejected, when more than
    `max_rejected_share` of its rows were rejected, or when events or order lines kept no
    clean row at all. Returns the per-table counts when the load passes. `target` says where
    the warehouse was built (see `newest_load`).
    """
    newest = newest_load(paths, target)
    problems: list[str] = []
    counts: dict[str, object] = {}
    for table, rows_in, clean, rejected in newest:
        counts[table] = {"in": rows_in, "clean": clean, "rejected": rejected}
        if rows_in != clean + rejected:
            problems.append(f"{table}: {rows_in} rows in != {clean} clean + {rejected} rejected")
        if rows_in and rejected / rows_in > max_rejected_share:
            problems.append(
                f"{table}: {rejected / rows_in:.1%} of rows rejected "
                f"(allowed {max_rejected_share:.1%}); see audit.rejected_rows"
            )
    for table in ("events", "order_lines"):
        if table in counts and counts[table]["clean"] == 0:  # type: ignore[index]
            problems.append(f"{table}: no clean rows in this load")
    if problems:
        raise QualityGateFailed("quality gate failed: " + "; ".join(problems))
    return counts


def feature_window_end(paths: Paths, target: str | None = None) -> datetime:
    """Just after the newest feature snapshot dbt built: the end of what to materialize.

    On DuckDB the snapshots are the Parquet exports; on `spark` the Spark tables
    marts.user_features and marts.item_features.
    """
    from ml_jobs.sources import SPARK, input_target

    if input_target(target) == SPARK:
        from ml_jobs import features, features_spark

        store = features.feature_store(paths, offline=SPARK)
        tables = ["marts.user_features", "marts.item_features"]
        missing = [t for t in tables if features_spark.table_columns(store.config, t) is None]
        if missing:
            raise MissingInputError(
                f"feature tables missing from the Spark catalog of {paths.home}: {missing}; "
                "run the warehouse build (dbt build --target spark) first"
            )
        newest = features_spark.newest_snapshot(store.config, tables)
        if newest is None:
            raise MissingInputError(f"the Spark feature tables {tables} hold no snapshots")
        return newest + timedelta(seconds=1)
    files = [paths.export_files("user_features"), paths.export_files("item_features")]
    absent = [f for f in files if not glob.glob(f)]
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


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def publish_features(
    paths: Paths,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    target: str | None = None,
) -> int:
    """Register the Feast definitions and load feature snapshots into the online store.

    With `start`/`end` (a DAG run's data interval) only snapshots stamped inside it are
    loaded; `end` never goes past the newest snapshot dbt built. Without them, each view picks
    up from where its last load ended. On `spark` (the target, or BASKETCAST_DBT_TARGET when
    unset) the snapshots are read through Feast's Spark offline store
    (feature_repo/feature_store.spark.yaml), which also keeps its own registry and online store.
    """
    from ml_jobs import features
    from ml_jobs.sources import input_target

    offline = input_target(target)
    features.apply(paths, offline=offline)
    newest = feature_window_end(paths, target)
    stop = min(_as_utc(end) or newest, newest)
    begin = _as_utc(start)
    if begin is not None and begin >= stop:
        return 0
    return features.materialize(paths, end=stop, start=begin, offline=offline)


# A fresh install bootstraps with the fast models so it serves forecasts within minutes; the
# weekly training DAG brings the torch challenger.
BOOTSTRAP_DEMAND_MODELS = ("seasonal_naive", "xgboost_quantile")


def train_demand(
    paths: Paths, models: tuple[str, ...] | None = None, target: str | None = None
) -> dict[str, object]:
    """Backtest, train and predict the demand models; write forecasts, registry, champion.

    `target` is where the history is read (unset: BASKETCAST_DBT_TARGET; ml_jobs.sources)."""
    from ml_jobs.demand.job import DemandJobConfig, run_demand_forecast

    config = DemandJobConfig() if models is None else DemandJobConfig(models=models)
    result = run_demand_forecast(paths, config, target=target)
    # A small JSON-safe summary: the DAG passes it on as an XCom.
    return {
        "as_of_date": str(result.as_of_date),
        "n_items": result.n_items,
        "champion_run_id": result.champion_run_id,
        "seconds": round(result.seconds, 1),
        "runs": [
            {"model": r.model_name, "run_id": r.run_id, "status": r.status, **r.metrics}
            for r in result.runs
        ],
    }


def train_users(paths: Paths, fast: bool = False, target: str | None = None) -> dict[str, object]:
    """User models: backtest, fit, write propensity, category affinity and recommendations.

    `fast` (the bootstrap of a fresh install) runs one backtest cutoff and skips the torch
    sequence model; the weekly training DAG runs the full job. `target` is where events,
    training set and features are read (unset: BASKETCAST_DBT_TARGET; ml_jobs.sources).
    """
    from ml_jobs.users.backtest import UserModelsConfig
    from ml_jobs.users.job import run_user_models

    config = UserModelsConfig(n_cutoffs=1, use_torch=False) if fast else UserModelsConfig()
    result = run_user_models(paths, config, target=target)
    summary = asdict(result)
    summary.pop("backtest", None)
    return json.loads(json.dumps(summary, default=str))


def predict_champions(
    paths: Paths, interval_end: datetime | str | None = None, target: str | None = None
) -> dict[str, object]:
    """Score every product's champion as of the day before `interval_end` and write it back.

    A product without a champion is trained first (fast models), so a fresh install bootstraps
    itself: the demand champion forecasts every item, the user champions score every active user
    (propensity, category affinity, recommendations). Inputs come from where `target` built
    the warehouse (unset: BASKETCAST_DBT_TARGET); predictions go to warehouse.duckdb.
    """
    from ml_jobs.demand.champion import predict_with_champion
    from ml_jobs.users.champion import predict_user_champions

    end = _as_utc(interval_end)
    as_of = None if end is None else (end - timedelta(days=1)).date()
    summary: dict[str, object] = {}
    demand = predict_with_champion(paths, as_of=as_of, target=target)
    if demand is None:
        bootstrap = train_demand(paths, models=BOOTSTRAP_DEMAND_MODELS, target=target)
        summary["item_demand_forecast"] = {"bootstrap": bootstrap}
    else:
        summary["item_demand_forecast"] = json.loads(json.dumps(asdict(demand), default=str))
    users = predict_user_champions(paths, as_of=as_of, target=target)
    if users is None:
        summary["user_models"] = {"bootstrap": train_users(paths, fast=True, target=target)}
    else:
        summary["user_models"] = json.loads(json.dumps([asdict(u) for u in users], default=str))
    return summary


def build_consumers(paths: Paths, *, target: str | None = None) -> None:
    """dbt build of the consumer marts that read the `_latest` prediction views.

    On `spark` (the target, or BASKETCAST_DBT_TARGET when unset) the prediction tables and the
    registry that ml_jobs writes to warehouse.duckdb are published to the Spark catalog first
    (`ml_jobs.spark.publish_predictions`), so the marts read the newest runs there.
    """
    from ml_jobs import dbt_runner, spark

    if spark.resolve_target(target) == spark.SPARK_TARGET:
        spark.publish_predictions(paths, spark.session(paths))
    dbt_runner.build_consumers(paths, target=target)


def run_all(paths: Paths, generate_if_missing: bool = True) -> dict[str, object]:
    """Every step in order, in this process (the DAGs run the same steps as tasks)."""
    summary: dict[str, object] = {"ingest": ingest(paths, generate_if_missing)}
    build_warehouse(paths)
    summary["quality"] = quality_gate(paths)
    summary["materialized"] = publish_features(paths)
    summary["predictions"] = predict_champions(paths)
    build_consumers(paths)
    summary["finished_at"] = datetime.now(UTC).isoformat()
    return summary
