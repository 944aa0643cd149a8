"""Warehouse I/O: the prediction tables, the model registry, and atomic write-back.

DuckDB takes one writer per file, so every function here opens a connection, does its work and
closes it before returning; nothing holds the warehouse open between steps.
"""

from __future__ import annotations

import os
import re
import time
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
    p90 DOUBLE NOT NULL,
    grain VARCHAR DEFAULT 'day'""",
    "user_purchase_propensity": """
    user_id BIGINT NOT NULL,
    window_days INTEGER NOT NULL,
    p_purchase DOUBLE NOT NULL,
    expected_spend DOUBLE NOT NULL,
    decile INTEGER NOT NULL""",
    "user_category_affinity": """
    user_id BIGINT NOT NULL,
    category_id BIGINT NOT NULL,
    score DOUBLE NOT NULL,
    rank INTEGER NOT NULL""",
    "user_item_recommendations": """
    user_id BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    score DOUBLE NOT NULL,
    rank INTEGER NOT NULL""",
}

# Columns added after a table's first release: added to older warehouses on open, and filled with
# their default when a writer's frame does not carry them.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "item_demand_forecast": {"grain": "day"},  # day | week (target_date is the week's Monday)
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
    # Who runs a `running` run (so a killed job's row can be closed) and when it finished;
    # added to registries created before these columns existed.
    "ALTER TABLE ml.model_runs ADD COLUMN IF NOT EXISTS owner_host VARCHAR",
    "ALTER TABLE ml.model_runs ADD COLUMN IF NOT EXISTS owner_pid BIGINT",
    "ALTER TABLE ml.model_runs ADD COLUMN IF NOT EXISTS finished_at TIMESTAMPTZ",
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


def latest_view_sql(table: str, columns: list[str] | None = None) -> str:
    """The newest as-of date of the champion's newest succeeded run of one prediction table.

    A training run writes its forecast once; daily batch prediction then writes the same
    champion run for each new as-of date, so a run holds one block of rows per as-of date.
    The view selects `columns` in that order (default: the table's own, `p.*`); Spark lists
    them, since it puts the columns of a USING join first in `p.*`.
    """
    selected = "p.*" if columns is None else ", ".join(f"p.{c}" for c in columns)
    return f"""CREATE OR REPLACE VIEW predictions.{table}_latest AS
    WITH champion_run AS (
        SELECT r.run_id
        FROM ml.model_runs r
        WHERE r.is_champion AND r.status = 'succeeded'
          AND r.run_id IN (SELECT DISTINCT run_id FROM predictions.{table})
        ORDER BY r.trained_at DESC, r.run_id DESC
        LIMIT 1
    ),
    newest AS (
        SELECT p.run_id, max(p.as_of_date) AS as_of_date
        FROM predictions.{table} p JOIN champion_run USING (run_id)
        GROUP BY p.run_id
    )
    SELECT {selected} FROM predictions.{table} p JOIN newest USING (run_id, as_of_date)"""


class WarehouseBusyError(RuntimeError):
    """Another process held the DuckDB warehouse's write lock for longer than we would wait."""


def lock_timeout_s() -> float:
    """How long a writer waits for the warehouse lock (env BASKETCAST_LOCK_TIMEOUT_S)."""
    return float(os.environ.get("BASKETCAST_LOCK_TIMEOUT_S", "300"))


def duckdb_settings() -> dict[str, str | bool]:
    """The out-of-core settings the dbt profile reads, for ml_jobs' own connections.

    Only the ones set in the environment are returned (BASKETCAST_DUCKDB_MEMORY_LIMIT,
    BASKETCAST_DUCKDB_PRESERVE_ORDER): a connection with no settings keeps DuckDB's defaults, as
    the profile's defaults do. DuckDB spills to `<warehouse>.tmp/` past the memory limit.
    """
    settings: dict[str, str | bool] = {}
    if limit := os.environ.get("BASKETCAST_DUCKDB_MEMORY_LIMIT"):
        settings["memory_limit"] = limit
    if (order := os.environ.get("BASKETCAST_DUCKDB_PRESERVE_ORDER")) is not None:
        settings["preserve_insertion_order"] = order.strip().lower() not in ("false", "0", "no")
    return settings


# In-memory sessions (Feast's offline store, export reads) get this share of the warehouse's
# memory limit unless BASKETCAST_SESSION_MEMORY_LIMIT says otherwise: they run beside the
# Python process that holds their results, which the warehouse's limit does not count.
SESSION_SHARE = 0.25
# DuckDB's own default memory limit, a share of physical memory, for when no limit is set.
DUCKDB_DEFAULT_SHARE = 0.8
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def memory_bytes(text: str, setting: str = "memory limit") -> int:
    """Bytes of a DuckDB-style size such as `8GB`, `512 MiB`, `1.5gb` or `50%` (of physical
    memory)."""
    if (share := text.strip()).endswith("%"):
        try:
            return int(_physical_memory() * float(share[:-1]) / 100)
        except ValueError:
            pass
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    unit = {"k": "kb", "m": "mb", "g": "gb", "t": "tb", "": "b"}.get(unit, unit)
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{setting} {text!r} is not a size: write a number and a unit such as 512MB, 8GB "
            f"or 2GiB (units: {', '.join(sorted(_UNITS))}), or a share of memory such as 50%"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def _physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def session_memory_limit() -> str:
    """The memory limit of ml_jobs' in-memory DuckDB sessions, in whole MiB.

    BASKETCAST_SESSION_MEMORY_LIMIT when set; otherwise `SESSION_SHARE` of the warehouse limit
    (BASKETCAST_DUCKDB_MEMORY_LIMIT, or DuckDB's default of 80 % of physical memory).
    """
    if own := os.environ.get("BASKETCAST_SESSION_MEMORY_LIMIT"):
        limit = memory_bytes(own, "BASKETCAST_SESSION_MEMORY_LIMIT")
    elif shared := os.environ.get("BASKETCAST_DUCKDB_MEMORY_LIMIT"):
        limit = int(memory_bytes(shared, "BASKETCAST_DUCKDB_MEMORY_LIMIT") * SESSION_SHARE)
    else:
        limit = int(_physical_memory() * DUCKDB_DEFAULT_SHARE * SESSION_SHARE)
    return f"{max(limit // 2**20, 1)}MiB"


def scratch_settings(scratch: Path) -> dict[str, str | bool]:
    """Settings of an in-memory DuckDB session: its own memory limit (see
    `session_memory_limit`), the warehouse's insertion-order setting, and a spill folder.

    An in-memory DuckDB spills into `./.tmp` under the working directory by default; basketcast
    points it at `scratch` (the home's `tmp/`) so a large read never writes where it runs from.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    return {
        **duckdb_settings(),
        "memory_limit": session_memory_limit(),
        "temp_directory": str(scratch),
    }


@contextmanager
def scratch_session(scratch: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB (UTC session) that spills under `scratch`, closed on exit."""
    with duckdb.connect(config=scratch_settings(scratch)) as con:
        con.execute("SET TimeZone = 'UTC'")
        yield con


@contextmanager
def connect(warehouse: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection that is always closed, so dbt can take the file next.

    DuckDB allows one writing process per file. When another process holds the file, this
    waits (polling) up to `lock_timeout_s()` and then fails with a message naming the file,
    never touching it in the meantime.
    """
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s()
    while True:
        try:
            con = duckdb.connect(str(warehouse), read_only=read_only, config=duckdb_settings())
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {warehouse} is locked by another process (a dbt build or a "
                    f"prediction write?) and stayed locked for {lock_timeout_s():.0f} s; wait "
                    "for it to finish or raise BASKETCAST_LOCK_TIMEOUT_S. DuckDB said: "
                    f"{error}"
                ) from error
            time.sleep(0.5)
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """True when `schema.name` is a table or view in the warehouse."""
    schema, name = qualified.split(".")
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def ensure_prediction_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ml and predictions schemas, tables and `_latest` views if they are missing."""
    for statement in DDL:
        con.execute(statement)
    for table, columns in PREDICTION_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS predictions.{table} ({RUN_COLUMNS},{columns})")
        for column, default in ADDED_COLUMNS.get(table, {}).items():
            con.execute(
                f"ALTER TABLE predictions.{table} "
                f"ADD COLUMN IF NOT EXISTS {column} VARCHAR DEFAULT '{default}'"
            )
        con.execute(latest_view_sql(table))


def write_predictions(warehouse: Path, table: str, frame: pd.DataFrame) -> int:
    """Replace the rows of each (run_id, as_of_date) in `frame` in a single transaction.

    `frame` holds exactly the table's columns (run columns included). Readers see the previous
    content or the new one, never a part; writing the same run and as-of date again replaces
    it, so a rerun never duplicates rows. Returns rows written.
    """
    if table not in PREDICTION_TABLES:
        known = list(PREDICTION_TABLES)
        raise ValueError(f"unknown prediction table {table!r}; expected one of {known}")
    with connect(warehouse) as con:
        ensure_prediction_schema(con)
        columns = [row[0] for row in con.execute(f"DESCRIBE predictions.{table}").fetchall()]
        defaults = ADDED_COLUMNS.get(table, {})
        frame = frame.assign(**{c: v for c, v in defaults.items() if c not in frame.columns})
        missing = sorted(set(columns) - set(frame.columns))
        if missing:
            raise ValueError(f"predictions.{table}: frame lacks columns {missing}")
        con.register("incoming", frame[columns])
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"""DELETE FROM predictions.{table} AS p
                USING (SELECT DISTINCT run_id, CAST(as_of_date AS DATE) AS as_of_date
                       FROM incoming) AS k
                WHERE p.run_id = k.run_id AND p.as_of_date = k.as_of_date"""
            )
            con.execute(f"INSERT INTO predictions.{table} SELECT * FROM incoming")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("incoming")
    return len(frame)
