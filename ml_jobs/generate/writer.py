"""Streaming Parquet output in the raw input contract (docs/contracts.md, section 1).

The generator produces one day at a time; a `TableSink` buffers those batches and writes a row
group whenever enough rows are waiting, rolling over to a new ``part-NNNNN.parquet`` file when
one grows past a row limit. Memory therefore stays bounded by one row group per table, whatever
the size of the shop.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "events": pa.schema(
        [
            ("event_id", pa.int64()),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("event_type", pa.string()),
            ("event_ts", TIMESTAMP),
            ("session_id", pa.string()),
            ("quantity", pa.int32()),
            ("price", pa.float64()),
            ("query_text", pa.string()),
        ]
    ),
    "order_lines": pa.schema(
        [
            ("order_id", pa.int64()),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("quantity", pa.int32()),
            ("unit_price", pa.float64()),
            ("order_ts", TIMESTAMP),
            ("status", pa.string()),
        ]
    ),
    "items": pa.schema(
        [
            ("item_id", pa.int64()),
            ("category_id", pa.int64()),
            ("category_name", pa.string()),
            ("brand", pa.string()),
            ("title", pa.string()),
            ("base_price", pa.float64()),
            ("launched_at", TIMESTAMP),
        ]
    ),
    "reviews": pa.schema(
        [
            ("review_id", pa.int64()),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("rating", pa.int32()),
            ("review_text", pa.string()),
            ("review_ts", TIMESTAMP),
        ]
    ),
    "inventory_snapshots": pa.schema(
        [
            ("item_id", pa.int64()),
            ("snapshot_date", pa.date32()),
            ("on_hand", pa.int32()),
            ("on_order", pa.int32()),
            ("lead_time_days", pa.int32()),
            ("unit_cost", pa.float64()),
        ]
    ),
    "promotions": pa.schema(
        [
            ("item_id", pa.int64()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
            ("discount_pct", pa.float64()),
        ]
    ),
    "truth": pa.schema(
        [
            ("item_id", pa.int64()),
            ("demand_date", pa.date32()),
            ("expected_units", pa.float64()),
            ("in_stock", pa.bool_()),
        ]
    ),
}


def clear_parquet(folder: Path) -> None:
    """Make `folder` exist and hold no Parquet files, so a new run replaces the old one."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("*.parquet")):
        old.unlink()


def _as_arrow(values: object, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == type_ else values.cast(type_)
    return pa.array(values, type=type_)


class TableSink:
    """Buffers record batches of one table and streams them to ``part-*.parquet`` files."""

    def __init__(self, folder: Path, schema: pa.Schema, row_group_rows: int, file_rows: int):
        self.folder = folder
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.file_rows = file_rows
        self.rows_written = 0
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._part = 0
        self._rows_in_part = 0
        clear_parquet(folder)

    def append(self, columns: dict[str, pa.Array | object]) -> None:
        """Queue one batch given as column name → array (any order; converted to the schema)."""
        arrays = [_as_arrow(columns[f.name], f.type) for f in self.schema]
        batch = pa.record_batch(arrays, schema=self.schema)
        if batch.num_rows == 0:
            return
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        if self._buffered >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered as one row group (opening a new part file if needed)."""
        if not self._buffer:
            return
        table = pa.Table.from_batches(self._buffer, schema=self.schema).combine_chunks()
        self._buffer, self._buffered = [], 0
        if self._writer is not None and self._rows_in_part >= self.file_rows:
            self._writer.close()
            self._writer = None
            self._part += 1
            self._rows_in_part = 0
        if self._writer is None:
            path = self.folder / f"part-{self._part:05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._rows_in_part += table.num_rows
        self.rows_written += table.num_rows

    def close(self) -> int:
        """Flush and close; a table with no rows still gets one empty part. Returns rows written."""
        self.flush()
        if self._writer is None:
            pq.write_table(self.schema.empty_table(), self.folder / "part-00000.parquet")
        else:
            self._writer.close()
            self._writer = None
        return self.rows_written
