"""Feast's Spark offline store as ml_jobs.features uses it: the session, table schemas, results.

With ``offline="spark"`` the feature store reads the tables ``dbt run --target spark`` builds
(``marts.user_features``, ``marts.item_features``) through Feast's Spark offline store
(``feature_repo/feature_store.spark.yaml``). Point-in-time retrieval then runs as Spark SQL, so
training sets can be cut where the data lives instead of on one machine.

The Spark session: Spark keeps one session per Python process, and its catalog settings
(warehouse folder, metastore) are fixed when the JVM starts. Feast takes the session this
process already runs - after an in-process ``dbt run --target spark`` (dbt-spark's
``method: session``) that is dbt's, with the catalog the tables were built in - and starts one
from the ``spark_conf`` of the YAML only when there is none. Locally that catalog is an
embedded Derby database under ``$BASKETCAST_HOME/spark-metastore``, which a single JVM may
open at a time: a second process on the same home fails until the first one exits.

pyspark is imported only inside these functions, and only ``offline="spark"`` calls them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from feast.repo_config import RepoConfig
    from pyspark.sql import SparkSession


def spark_session(config: RepoConfig) -> SparkSession:
    """The session Feast's Spark offline store runs in (this process's, or a new one)."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
        get_spark_session_or_start_new_with_repoconfig,
    )

    return get_spark_session_or_start_new_with_repoconfig(config.offline_store)


def table_columns(config: RepoConfig, table: str) -> dict[str, Any] | None:
    """Column name -> Arrow type of a Spark catalog table; None when there is no such table.

    Spark's TIMESTAMP is an instant, so it maps to a UTC timestamp; TIMESTAMP_NTZ maps to a
    timestamp without zone (which the feature contract rejects).
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    session = spark_session(config)
    if not session.catalog.tableExists(table):
        return None
    schema = to_arrow_schema(session.table(table).schema, timezone="UTC")
    return {name: schema.field(name).type for name in schema.names}


def utc_timestamps(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` as UTC-aware timestamps.

    Spark hands TIMESTAMP values to pandas as naive wall-clock times of the session time zone,
    which feature_store.spark.yaml (and dbt's profile) set to UTC.
    """
    import pandas as pd

    for column in columns:
        stamps = pd.to_datetime(frame[column])
        frame[column] = (
            stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
        )
    return frame


def newest_snapshot(config: RepoConfig, tables: list[str]) -> datetime | None:
    """The newest ``feature_ts`` over the Spark ``tables`` (UTC); None when they hold no rows."""
    session = spark_session(config)
    stamps = [
        session.sql(f"SELECT max(feature_ts) AS newest FROM {table}").collect()[0]["newest"]
        for table in tables
    ]
    found = [s for s in stamps if s is not None]
    # Spark hands TIMESTAMP values back as naive wall-clock times of the session zone (UTC).
    return max(found).replace(tzinfo=UTC) if found else None


def count_entities(
    config: RepoConfig, table: str, join_key: str, ts: str, start: datetime, end: datetime
) -> int:
    """Entities of a Spark table with a snapshot in [start, end]: what one materialization
    writes online (the DuckDB offline store counts the same in its Parquet exports)."""
    session = spark_session(config)
    window = f"TIMESTAMP '{start.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}' AND " + (
        f"TIMESTAMP '{end.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}'"
    )
    row = session.sql(
        f"SELECT count(DISTINCT {join_key}) AS n FROM {table} WHERE {ts} BETWEEN {window}"
    ).collect()[0]
    return int(row["n"])
