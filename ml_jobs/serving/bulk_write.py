"""Fast, memory-bounded materialization: the newest snapshot per entity, written in bulk.

Feast's own ``materialize`` turns every entity row into Python protobuf objects and writes
SQLite one statement per feature and Redis after a read-back of every key. This path writes
exactly the same bytes (``ml_jobs.serving.layout``) straight from Arrow batches:

1. DuckDB reads the view's Parquet export and keeps, per entity, the newest snapshot with
   feature_ts in [start, end] (ties broken by the later created_ts, as Feast does);
2. the result streams out in record batches of ``batch_rows`` entities (for SQLite sorted by
   serialized entity key, so the store's B-trees grow at their end), so memory stays bounded
   by one batch plus DuckDB's ``memory_limit`` and SQLite's page cache (``sqlite_connect``),
   whatever the number of entities;
3. each batch is encoded column-wise and written with one ``executemany`` (SQLite, one
   transaction per batch, rows generated lazily) or one pipelined round of ``HSET`` (Redis).

A window is written as given, on both stores: a snapshot in the window replaces what is
online for that entity (Feast's SQLite store behaves so; for Redis it is Feast's
``skip_dedup`` mode). ``ml_jobs.features.materialize`` only hands it forward windows, and an
explicit older window is a deliberate re-materialization.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ml_jobs.serving.layout import (
    FLOAT64,
    ViewLayout,
    encode_float64,
    encode_int64,
    entity_keys,
    text_values,
    timestamp_proto,
)

DEFAULT_BATCH_ROWS = 20_000


@dataclass(frozen=True)
class Batch:
    """One batch of newest snapshots, as numpy columns."""

    ids: np.ndarray  # int64
    event_us: np.ndarray  # feature_ts, epoch microseconds
    created_us: np.ndarray  # created_ts, epoch microseconds (0 when null)
    values: list[tuple[np.ndarray, np.ndarray]]  # per feature: (values, null mask)

    def __len__(self) -> int:
        return len(self.ids)


def _column(array: Any, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = np.asarray(array.is_null(), dtype=bool)
    fill = pa.scalar(0.0 if dtype == FLOAT64 else 0, array.type)
    values = pc.fill_null(array, fill).to_numpy(zero_copy_only=False)
    return values.astype("float64" if dtype == FLOAT64 else "int64", copy=False), nulls


def _micros(array: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    as_us = pc.cast(array, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return pc.fill_null(as_us, 0).to_numpy(zero_copy_only=False)


def read_newest(
    layout: ViewLayout,
    path: str,
    start: datetime,
    end: datetime,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    timestamp_field: str = "feature_ts",
    created_field: str = "created_ts",
    memory_limit: str = "1GB",
    key_order: bool = False,
    scratch: Path | None = None,
) -> Iterator[Batch]:
    """Stream the newest snapshot per entity with ``timestamp_field`` in [start, end].

    ``key_order`` sorts the entities by their serialized entity key (the id's little-endian
    bytes, lowest byte first), the order of the SQLite store's indexes: every batch then
    appends at the end of the B-trees instead of touching pages all over them, which keeps
    SQLite fast once the table outgrows its page cache. DuckDB sorts out of core, within
    ``memory_limit``, spilling under ``scratch`` (default: DuckDB's ``./.tmp``).
    """
    import duckdb

    from ml_jobs.serving.layout import check_identifier

    check_identifier(timestamp_field, f"timestamp field of feature view {layout.view!r}")
    check_identifier(created_field, f"created timestamp field of feature view {layout.view!r}")
    columns = ", ".join(f'"{name}"' for name in layout.features)
    key = f'"{layout.join_key}"'
    order = ""
    if key_order:
        order = "ORDER BY " + ", ".join(f"({key} >> {8 * b}) & 255" for b in range(8))
    query = f"""
        SELECT {key}, "{timestamp_field}", "{created_field}", {columns}
        FROM read_parquet(?)
        WHERE "{timestamp_field}" BETWEEN ? AND ?
        QUALIFY row_number() OVER (
            PARTITION BY {key} ORDER BY "{timestamp_field}" DESC, "{created_field}" DESC
        ) = 1
        {order}
    """
    config: dict[str, str | int] = {"memory_limit": memory_limit, "threads": 2}
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(scratch)
    with duckdb.connect(config=config) as con:
        con.execute("SET TimeZone = 'UTC'")
        reader = con.sql(query, params=[path, start, end]).to_arrow_reader(batch_rows)
        for record in reader:
            if record.num_rows == 0:
                continue
            yield Batch(
                ids=record.column(0).to_numpy(zero_copy_only=False).astype("int64"),
                event_us=_micros(record.column(1)),
                created_us=_micros(record.column(2)),
                values=[
                    _column(record.column(3 + i), dtype) for i, dtype in enumerate(layout.dtypes)
                ],
            )


def _encode(layout: ViewLayout, batch: Batch) -> list[list[bytes]]:
    return [
        encode_float64(values, nulls) if dtype == FLOAT64 else encode_int64(values, nulls)
        for (values, nulls), dtype in zip(batch.values, layout.dtypes, strict=True)
    ]


def sqlite_rows(layout: ViewLayout, batch: Batch) -> Iterator[tuple[Any, ...]]:
    """Feast's SQLite rows for a batch: (entity_key, feature, value, text, event_ts, created_ts).

    Yielded lazily in primary-key order (entity key, then feature name), so ``executemany``
    holds one row at a time and SQLite appends to its B-trees instead of seeking.
    """
    keys = entity_keys(layout.join_key, batch.ids)
    event_s = (batch.event_us // 1_000_000).tolist()
    created_s = [None if c == 0 else c for c in (batch.created_us // 1_000_000).tolist()]
    encoded = _encode(layout, batch)
    texts = [text_values(values, nulls) for values, nulls in batch.values]
    columns = sorted(range(len(layout.features)), key=layout.features.__getitem__)
    names = [layout.features[f] for f in columns]
    for i in sorted(range(len(keys)), key=keys.__getitem__):
        key, event, created = keys[i], event_s[i], created_s[i]
        for f, name in zip(columns, names, strict=True):
            yield key, name, encoded[f][i], texts[f][i], event, created


def sqlite_upsert(table: str) -> str:
    """The statement Feast's SQLite store writes each (entity, feature) row with."""
    return (
        f'INSERT INTO "{table}" (entity_key, feature_name, value, value_text, event_ts, '
        "created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE "
        "SET value = excluded.value, value_text = excluded.value_text, "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts"
    )


def sqlite_connect(path: str, cache_mb: int = 256) -> sqlite3.Connection:
    """A writing connection with a page cache big enough to keep the B-trees in memory."""
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
    return con


def write_sqlite(con: sqlite3.Connection, layout: ViewLayout, batches: Iterator[Batch]) -> int:
    """Upsert every batch into the view's table (created by ``feast apply``); return entities."""
    statement = sqlite_upsert(layout.sqlite_table)
    written = 0
    for batch in batches:
        with con:
            con.executemany(statement, sqlite_rows(layout, batch))
        written += len(batch)
    return written


def redis_mappings(layout: ViewLayout, batch: Batch) -> tuple[list[bytes], list[dict]]:
    """Feast's Redis hash key and field mapping for each entity of a batch."""
    project = layout.project.encode()
    keys = [key + project for key in entity_keys(layout.join_key, batch.ids)]
    stamps = {us: timestamp_proto(us) for us in set(batch.event_us.tolist())}
    fields = [*layout.redis_fields(), layout.redis_ts_field]
    columns = [*_encode(layout, batch), [stamps[us] for us in batch.event_us.tolist()]]
    mappings = [dict(zip(fields, row, strict=True)) for row in zip(*columns, strict=True)]
    return keys, mappings


def write_redis(
    client: Any, layout: ViewLayout, batches: Iterator[Batch], key_ttl_seconds: int | None = None
) -> int:
    """HSET every entity's hash in one pipelined round per batch; return entities written."""
    written = 0
    for batch in batches:
        keys, mappings = redis_mappings(layout, batch)
        with client.pipeline(transaction=False) as pipe:
            for key, mapping in zip(keys, mappings, strict=True):
                pipe.hset(key, mapping=mapping)
                if key_ttl_seconds:
                    pipe.expire(key, key_ttl_seconds)
            pipe.execute()
        written += len(batch)
    return written


def counted(batches: Iterator[Batch], progress: Callable[[int], Any] | None) -> Iterator[Batch]:
    """Pass batches through, reporting each batch's size to ``progress``."""
    for batch in batches:
        yield batch
        if progress is not None:
            progress(len(batch))


def materialize_view(
    store: Any,
    view: Any,
    start: datetime,
    end: datetime,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[int], Any] | None = None,
    scratch: Path | None = None,
) -> int:
    """Write ``view``'s newest snapshots in [start, end] online and record the interval.

    The same result as ``store.materialize(start, end, [view.name])`` (the registry's
    materialization intervals included, so incremental runs continue from ``end``), in
    batches of ``batch_rows`` entities, spilling sorts under ``scratch``. Returns the number
    of entities written.
    """
    from ml_jobs.serving.layout import view_layout

    layout = view_layout(store.project, view)
    source = view.batch_source
    batches = counted(
        read_newest(
            layout,
            source.path,
            start,
            end,
            batch_rows,
            source.timestamp_field,
            source.created_timestamp_column,
            key_order=store.config.online_store.type == "sqlite",
            scratch=scratch,
        ),
        progress,
    )
    config = store.config.online_store
    if config.type == "sqlite":
        from feast.infra.online_stores.sqlite import SqliteOnlineStore

        con = sqlite_connect(SqliteOnlineStore._get_db_path(store.config))
        try:
            written = write_sqlite(con, layout, batches)
        finally:
            con.close()
    elif config.type == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStore

        client = RedisOnlineStore()._get_client(config)
        try:
            written = write_redis(client, layout, batches, config.key_ttl_seconds)
        finally:
            client.close()
    else:
        raise ValueError(f"bulk materialization supports sqlite and redis, not {config.type!r}")
    store.registry.apply_materialization(view, store.project, start, end)
    return written
