"""Write an ingested dataset as the raw input contract, and map string ids to BIGINT stably.

Every adapter ends here: one Parquet file per raw table under `raw/<table>/`, typed exactly by
the generator's schemas (docs/contracts.md, section 1). Tables a dataset does not have are
written empty, with the schema, so every pipeline step sees the same six tables.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_jobs.config import OPTIONAL_RAW_TABLES, RAW_TABLES, Paths
from ml_jobs.generate.writer import SCHEMAS, clear_parquet

_MASK63 = (1 << 63) - 1


def stable_id(text: str) -> int:
    """A positive BIGINT for a string id: the same text gives the same id in every run."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK63 or 1


def stable_ids(values: pd.Series) -> pd.Series:
    """`stable_id` of every value of a string series (hashing each distinct value once)."""
    codes, uniques = pd.factorize(values.astype(str))
    mapped = np.array([stable_id(u) for u in uniques], dtype=np.int64)
    return pd.Series(mapped[codes], index=values.index, dtype="int64")


def to_arrow(frame: pd.DataFrame | None, table: str, schema: pa.Schema | None = None) -> pa.Table:
    """A frame with the contract's columns (any order) as an Arrow table of exactly its schema
    (`schema`, or the raw contract's for `table`)."""
    schema = schema or SCHEMAS[table]
    if frame is None or frame.empty:
        return schema.empty_table()
    missing = [f.name for f in schema if f.name not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks contract columns {missing}")
    arrays = []
    for f in schema:
        column = frame[f.name]
        if pa.types.is_timestamp(f.type):
            column = pd.to_datetime(column, utc=True)
        elif pa.types.is_date32(f.type):
            column = pd.to_datetime(column).dt.date
        arrays.append(pa.array(column, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_raw(paths: Paths, tables: dict[str, pd.DataFrame | None]) -> dict[str, int]:
    """Replace every raw table with `tables` (absent ones empty); return rows per table.

    Files of optional raw tables (campaigns) are removed too: they belonged to the data this
    replaces. An adapter that has them writes them after this call.
    """
    unknown = sorted(set(tables) - set(RAW_TABLES))
    if unknown:
        raise ValueError(f"not raw contract tables: {unknown}; expected some of {RAW_TABLES}")
    rows: dict[str, int] = {}
    for name in RAW_TABLES:
        arrow = to_arrow(tables.get(name), name)
        folder = paths.raw_table(name)
        clear_parquet(folder)
        pq.write_table(arrow, folder / "part-00000.parquet", compression="zstd")
        rows[name] = arrow.num_rows
    for name in OPTIONAL_RAW_TABLES:
        if paths.raw_table(name).exists():
            clear_parquet(paths.raw_table(name))
    return rows
