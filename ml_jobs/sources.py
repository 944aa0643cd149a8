"""Where the ML jobs read the warehouse they train and predict on: DuckDB or the Spark catalog.

The demand and user jobs read a handful of tables dbt builds (the daily demand fact, the item
catalogue, the clean event log, the user training set). On the default deployment they live in
`warehouse.duckdb`; with `BASKETCAST_DBT_TARGET=spark` dbt builds them as Spark catalog tables,
and the jobs read them there, through this process's Spark session (`ml_jobs.spark.session`):
no DuckDB build of the same data is needed. The SQL the jobs send is the same on both; the one
function the dialects spell differently is `epoch_us`.

What the jobs write (predictions, `ml.model_runs`, backtest metrics) still goes to
`warehouse.duckdb`, ml_jobs' own store, on every target; `basketcast_consumers` publishes it to
Spark before the consumer marts read it (`ml_jobs.spark.publish_predictions`).

On Spark a batched read (`batches`) collects the query's result on the driver as one Arrow
table and hands it out in slices: the event log crosses at about 33 bytes an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from ml_jobs.config import Paths

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyspark.sql import SparkSession

SPARK = "spark"


class MissingWarehouseError(LookupError):
    """The DuckDB warehouse the inputs would be read from does not exist."""


class WarehouseReader(Protocol):
    """Read-only SQL over the tables dbt built, on one target."""

    target: str
    where: str  # for messages: the file or catalog the tables are read from
    errors: tuple[type[Exception], ...]  # what a failing query raises

    def exists(self, table: str) -> bool: ...

    def frame(self, sql: str) -> pd.DataFrame: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def batches(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]: ...

    def epoch_us(self, column: str) -> str: ...


def input_target(target: str | None = None) -> str:
    """`spark` when the inputs come from the Spark catalog, `duckdb` otherwise; also the name
    of the Feast offline store (ml_jobs.features) that reads the feature tables there.

    `target` is a dbt profile output (unset: BASKETCAST_DBT_TARGET). Every output other than
    `spark` reads warehouse.duckdb, as the jobs always have.
    """
    from ml_jobs.spark import resolve_target

    return SPARK if resolve_target(target) == SPARK else "duckdb"


class DuckDBReader:
    def __init__(self, con: duckdb.DuckDBPyConnection, where: str) -> None:
        import duckdb

        self.target = "duckdb"
        self.where = where
        self.errors = (duckdb.Error,)
        self._con = con

    def exists(self, table: str) -> bool:
        from ml_jobs.warehouse import table_exists

        return table_exists(self._con, table)

    def frame(self, sql: str) -> pd.DataFrame:
        return self._con.execute(sql).df()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self._con.execute(sql).fetchall()

    def batches(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from self._con.sql(sql).to_arrow_reader(batch_rows)

    def epoch_us(self, column: str) -> str:
        return f"epoch_us({column})"


class SparkReader:
    def __init__(self, session: SparkSession, where: str) -> None:
        from pyspark.errors import PySparkException

        self.target = SPARK
        self.where = where
        self.errors = (PySparkException,)
        self._session = session

    def exists(self, table: str) -> bool:
        return bool(self._session.catalog.tableExists(table))

    def frame(self, sql: str) -> pd.DataFrame:
        """The result as DuckDB's `.df()` gives it: timestamps UTC-aware, dates as datetimes,
        decimals as floats (Spark hands pandas naive session-time stamps and date objects)."""
        from pyspark.sql import types

        from ml_jobs.features_spark import utc_timestamps

        result = self._session.sql(sql)
        frame = result.toPandas()
        fields = result.schema.fields
        for field in fields:
            if isinstance(field.dataType, types.DateType):
                frame[field.name] = pd.to_datetime(frame[field.name])
            elif isinstance(field.dataType, types.DecimalType):
                frame[field.name] = frame[field.name].astype("float64")
        stamps = [f.name for f in fields if isinstance(f.dataType, types.TimestampType)]
        return utc_timestamps(frame, stamps)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._session.sql(sql).collect()]

    def batches(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from self._session.sql(sql).toArrow().to_batches(max_chunksize=batch_rows)

    def epoch_us(self, column: str) -> str:
        return f"unix_micros({column})"


@contextmanager
def reader(paths: Paths, target: str | None = None) -> Iterator[WarehouseReader]:
    """A read-only view of the warehouse `target` built (see `input_target`).

    On DuckDB a read-only connection, closed on exit so dbt can take the file next; on Spark
    this process's session on the home's catalog, which stays up for the rest of the process.
    """
    if input_target(target) == SPARK:
        from ml_jobs import spark

        yield SparkReader(spark.session(paths), f"the Spark catalog of {paths.home}")
        return
    from ml_jobs.warehouse import connect

    if not paths.warehouse.exists():
        raise MissingWarehouseError(
            f"no warehouse at {paths.warehouse}: run `basketcast build` first (or set "
            "BASKETCAST_DBT_TARGET=spark when dbt builds on Spark)"
        )
    with connect(paths.warehouse, read_only=True) as con:
        yield DuckDBReader(con, str(paths.warehouse))
