"""The feature contract of the exports: each source's columns and types against its views.

Feast checks neither at apply time: a missing column fails later, and a wrong type is coerced
without a word (a DOUBLE in an Int64 feature is truncated online but returned as is offline).
``ml_jobs.features`` runs these checks before it applies or materializes anything.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from typing import Any


def source_columns(source: Any, config: Any) -> list[tuple[str, dict[str, Any] | None]]:
    """Where ``source`` reads from, and its column name -> Arrow type (None when missing).

    An export is a glob over one Parquet file per month: each file is listed, so one left
    behind with other columns or types is caught (readers would cast it silently).
    """
    import pyarrow.parquet as pq

    if getattr(source, "table", None):  # a SparkSource: a table of the Spark catalog
        from ml_jobs.features_spark import table_columns

        return [(f"spark table {source.table}", table_columns(config, source.table))]
    files = sorted(glob.glob(source.path))
    if not files:
        return [(source.path, None)]
    found: list[tuple[str, dict[str, Any] | None]] = []
    for path in files:
        schema = pq.read_schema(path)
        found.append((path, {name: schema.field(name).type for name in schema.names}))
    return found


def source_problems(views: Iterable[Any], missing_ok: bool, config: Any = None) -> list[str]:
    """How each view's Parquet file (or Spark table) disagrees with its columns and types.

    Feast checks neither at apply time; a missing column fails later, and a wrong type is
    coerced without a word (a DOUBLE in an Int64 feature is truncated online but returned as
    is offline), so the exports are checked against the contract here. ``config`` (the
    store's RepoConfig) is needed for Spark sources only.
    """
    import pyarrow as pa
    from feast.types import Float64, Int64

    arrow_types = {Int64: pa.int64(), Float64: pa.float64()}
    problems: list[str] = []
    for view in views:
        source = view.batch_source
        for path, actual in source_columns(source, config):
            if actual is None:
                if not missing_ok:
                    problems.append(f"{path}: missing (feature view {view.name})")
                continue
            for column in (source.timestamp_field, source.created_timestamp_column):
                kind = actual.get(column)
                if kind is None or not (pa.types.is_timestamp(kind) and kind.tz is not None):
                    problems.append(f"{path}: {column} is {kind}, expected a UTC timestamp")
            for field in [*view.entity_columns, *view.features]:
                want = arrow_types.get(field.dtype)
                if want is not None and actual.get(field.name) != want:
                    found = actual.get(field.name, "missing")
                    problems.append(f"{path}: {field.name} is {found}, expected {want}")
    return problems


def raise_problems(problems: list[str]) -> None:
    if problems:
        raise ValueError("feature exports break the contract:\n" + "\n".join(problems))
