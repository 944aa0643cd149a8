"""Load the raw Parquet files into Postgres tables, so dbt can build the warehouse there.

DuckDB reads `$BASKETCAST_HOME/raw/<table>/*.parquet` in place; Postgres cannot, so
`dbt build --target postgres` reads `raw.<table>` instead. `load_raw` (re)creates those tables
with the contract's column types (docs/contracts.md, section 1) and streams every file in with
COPY, one table per transaction. Optional raw tables (`campaigns`) are loaded when the home holds
them and dropped from Postgres when it does not, so dbt builds their models empty there as it
does on DuckDB. The connection settings are the ones dbt's profile reads.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from rich.progress import Progress

from ml_jobs.config import OPTIONAL_RAW_TABLES, RAW_TABLES, Paths

RAW_SCHEMA = "raw"
BATCH_ROWS = 200_000


@dataclass(frozen=True)
class PostgresSettings:
    """Where the Postgres warehouse lives; defaults match dbt_project/profiles.yml."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    database: str = "basketcast"

    @classmethod
    def from_env(cls) -> PostgresSettings:
        return cls(
            host=os.environ.get("BASKETCAST_PG_HOST", cls.host),
            port=int(os.environ.get("BASKETCAST_PG_PORT", cls.port)),
            user=os.environ.get("BASKETCAST_PG_USER", cls.user),
            password=os.environ.get("BASKETCAST_PG_PASSWORD", cls.password),
            database=os.environ.get("BASKETCAST_PG_DATABASE", cls.database),
        )

    def connect(self, database: str | None = None):  # -> psycopg2 connection
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=database or self.database,
        )


def postgres_type(arrow_type: pa.DataType) -> str:
    """The Postgres column type for an Arrow type of the raw contract."""
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    raise ValueError(f"raw column type {arrow_type} has no Postgres mapping; add one here")


def create_database(settings: PostgresSettings, *, drop: bool = False) -> None:
    """Create `settings.database` (dropping it first when `drop`); connects to `postgres`."""
    con = settings.connect(database="postgres")
    con.autocommit = True
    try:
        with con.cursor() as cur:
            if drop:
                cur.execute(f'drop database if exists "{settings.database}" with (force)')
            cur.execute("select 1 from pg_database where datname = %s", [settings.database])
            if cur.fetchone() is None:
                cur.execute(f'create database "{settings.database}"')
    finally:
        con.close()


def drop_database(settings: PostgresSettings) -> None:
    con = settings.connect(database="postgres")
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{settings.database}" with (force)')
    finally:
        con.close()


def _csv_chunks(files: list[Path]) -> Iterator[tuple[int, bytes]]:
    """(rows, CSV bytes without header) per batch of BATCH_ROWS rows of the files."""
    options = pa_csv.WriteOptions(include_header=False)
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer, options)
            yield batch.num_rows, buffer.getvalue()


def load_raw(
    paths: Paths,
    settings: PostgresSettings | None = None,
    tables: Iterable[str] | None = None,
    schema: str = RAW_SCHEMA,
) -> dict[str, int]:
    """Replace `<schema>.<table>` with the rows of `paths.raw/<table>/*.parquet` for every
    table; returns the rows loaded per table.

    By default: every contract table, plus each optional table the home has files for; an
    optional table without files is dropped from `schema`, so no stale rows from an earlier
    load remain.
    """
    settings = settings or PostgresSettings.from_env()
    absent_optional: list[str] = []
    if tables is None:
        present = [t for t in OPTIONAL_RAW_TABLES if any(paths.raw_table(t).glob("*.parquet"))]
        absent_optional = [t for t in OPTIONAL_RAW_TABLES if t not in present]
        tables = [*RAW_TABLES, *present]
    loaded: dict[str, int] = {}
    con = settings.connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'create schema if not exists "{schema}"')
            for table in absent_optional:
                cur.execute(f'drop table if exists "{schema}"."{table}"')
        con.commit()
        with Progress(transient=True) as progress:
            for table in tables:
                files = sorted(paths.raw_table(table).glob("*.parquet"))
                if not files:
                    raise FileNotFoundError(
                        f"no raw files for {table!r} under {paths.raw_table(table)}: "
                        "run `basketcast generate` or an ingest adapter first"
                    )
                total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
                task = progress.add_task(f"loading {table}", total=total)
                columns = ", ".join(
                    f'"{field.name}" {postgres_type(field.type)}'
                    for field in pq.read_schema(files[0])
                )
                with con.cursor() as cur:
                    cur.execute(f'drop table if exists "{schema}"."{table}"')
                    cur.execute(f'create table "{schema}"."{table}" ({columns})')
                    copy = f'copy "{schema}"."{table}" from stdin with (format csv)'
                    for rows, chunk in _csv_chunks(files):
                        cur.copy_expert(copy, io.BytesIO(chunk))
                        progress.advance(task, rows)
                con.commit()
                loaded[table] = total
    finally:
        con.close()
    return loaded
