"""Warehouse I/O: the prediction tables, the model registry, and atomic write-back.

DuckDB takes one writer per file, so every function here opens a connection, does its work and
closes it before returning; nothing holds the warehouse open between steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

# Prediction tables, keyed by name, with the entity/target columns each adds to the run columns.
RUN_COLUMNS = """
    run_id VARCHAR NOT NULL,
    model_name VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    as_of_date DATE NOT NULL,
    predicted_at TIMESTAMPTZ NOT NULL"""

PREDICTION_TABLES: dict[str, str] = {
    "item_demand_forecast": """
    item_id BIGINT NOT NULL,
    target_date DATE NOT NULL,
    horizon INTEGER NOT NULL,
    p10 DOUBLE NOT NULL,
    p50 DOUBLE NOT NULL,
    p90 DOUBLE NOT NULL""",
}

DDL = [
    "CREATE SCHEMA IF NOT EXISTS ml",
    "CREATE SCHEMA IF NOT EXISTS predictions",
    """CREATE TABLE IF NOT EXISTS ml.model_runs (
        run_id VARCHAR PRIMARY KEY,
        model_name VARCHAR NOT NULL,
        model_kind VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        trained_at TIMESTAMPTZ NOT NULL,
        train_start DATE,
        train_end DATE,
        feature_service VARCHAR,
        params JSON,
        metrics JSON,
        artifact_uri VARCHAR,
        device VARCHAR,
        git_sha VARCHAR,
        is_champion BOOLEAN NOT NULL DEFAULT false,
        status VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS ml.backtest_metrics (
        run_id VARCHAR NOT NULL,
        model_name VARCHAR NOT NULL,
        cutoff DATE NOT NULL,
        horizon INTEGER,
        segment VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE
    )""",
]


def _latest_view(table: str) -> str:
    """The champion's newest succeeded run of one prediction table."""
    return f"""CREATE OR REPLACE VIEW predictions.{table}_latest AS
    WITH champion_run AS (
        SELECT r.run_id
        FROM ml.model_runs r
        WHERE r.is_champion AND r.status = 'succeeded'
          AND r.run_id IN (SELECT DISTINCT run_id FROM predictions.{table})
        ORDER BY r.trained_at DESC, r.run_id DESC
        LIMIT 1
    )
    SELECT p.* FROM predictions.{table} p JOIN champion_run USING (run_id)"""


@contextmanager
def connect(warehouse: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection that is always closed, so dbt can take the file next."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def ensure_prediction_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ml and predictions schemas, tables and `_latest` views if they are missing."""
    for statement in DDL:
        con.execute(statement)
    for table, columns in PREDICTION_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS predictions.{table} ({RUN_COLUMNS},{columns})")
        con.execute(_latest_view(table))


def write_predictions(warehouse: Path, table: str, frame: pd.DataFrame) -> int:
    """Replace one run's rows of a prediction table in a single transaction.

    `frame` holds exactly the table's columns (run columns included) for one or more run_ids.
    Readers see the previous content or the new one, never a part. Returns rows written.
    """
    if table not in PREDICTION_TABLES:
        known = list(PREDICTION_TABLES)
        raise ValueError(f"unknown prediction table {table!r}; expected one of {known}")
    with connect(warehouse) as con:
        ensure_prediction_schema(con)
        columns = [row[0] for row in con.execute(f"DESCRIBE predictions.{table}").fetchall()]
        missing = sorted(set(columns) - set(frame.columns))
        if missing:
            raise ValueError(f"predictions.{table}: frame lacks columns {missing}")
        run_ids = sorted(frame["run_id"].unique().tolist())
        con.register("incoming", frame[columns])
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"DELETE FROM predictions.{table} WHERE run_id IN (SELECT unnest(?))", [run_ids]
            )
            con.execute(f"INSERT INTO predictions.{table} SELECT * FROM incoming")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("incoming")
    return len(frame)
