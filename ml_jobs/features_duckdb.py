"""Feast's DuckDB offline store as ml_jobs.features uses it: the in-memory session, counts.

The default feature store (``feature_store.yaml``) reads the Parquet snapshots dbt exports to
``$BASKETCAST_HOME/exports`` through ibis's DuckDB backend. ``offline_session`` gives it an
in-memory DuckDB session with basketcast's settings for the length of a read;
``count_entities`` counts what a materialization window writes online. The Spark offline
store's counterparts are in ml_jobs.features_spark.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from ml_jobs.config import Paths


def count_entities(
    paths: Paths, path: str, join_key: str, ts: str, start: datetime, end: datetime
) -> int:
    """Entities with a snapshot in [start, end]: what one materialization writes online."""
    from ml_jobs.warehouse import scratch_session

    with scratch_session(paths.scratch) as con:
        row = con.execute(
            f"SELECT count(DISTINCT {join_key}) FROM read_parquet(?) WHERE {ts} BETWEEN ? AND ?",
            [path, start, end],
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def offline_session(paths: Paths) -> Iterator[None]:
    """Give Feast's DuckDB offline store an in-memory session of ours, and close it after.

    Feast reads the Parquet exports through ibis's default DuckDB backend, a module global.
    Opening it here applies basketcast's in-memory session settings (a memory limit of its own,
    smaller than the warehouse's: see ml_jobs.warehouse.session_memory_limit; spilling under
    ``paths.scratch`` instead of ``./.tmp`` in the working directory); closing it keeps duckdb
    from reporting a leaked connection at exit. ibis's own deprecation notices about duckdb's
    API are silenced: they are not ours to act on.
    """
    import ibis

    from ml_jobs.warehouse import scratch_settings

    ibis.options.default_backend = ibis.duckdb.connect(**scratch_settings(paths.scratch))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="ibis")
            yield
    finally:
        backend = ibis.options.default_backend
        if backend is not None:
            backend.disconnect()
            ibis.options.default_backend = None
