"""The Feast feature store as plain functions: apply, materialize, online and training reads.

The CLI, the Airflow DAGs and the tests call these. The definitions live in ``feature_repo/``
(Feast template layout); ``feature_store.yaml`` serves online from SQLite and
``feature_store.redis.yaml`` from Redis. Both read the Parquet snapshots dbt exports to
``$BASKETCAST_HOME/exports`` and keep the registry in ``$BASKETCAST_HOME/feast``.
``offline="spark"`` (``feature_store.spark.yaml``, see ml_jobs.features_spark) reads the
tables ``dbt run --target spark`` builds through Feast's Spark offline store instead, for
``apply`` and point-in-time training reads, with a registry and SQLite online store of its own.

Environment:
    BASKETCAST_HOME           set from ``Paths.home`` by every function here (Feast expands it
                              in the YAML, and the data sources build their paths from it).
    BASKETCAST_OFFLINE_STORE  set from ``offline`` while feature_repo/ is imported: ``spark``
                              makes data_sources.py declare Spark tables as sources.
    BASKETCAST_REDIS          Redis connection string for ``online="redis"``; defaults to
                              ``127.0.0.1:6379``.
    BASKETCAST_FEAST_PROJECT  optional project name in place of ``basketcast``: Redis keys
                              carry the project, so two deployments (or test runs) can share
                              one Redis without seeing each other's rows.

Feast, pandas and DuckDB are imported inside the functions, so importing this module (as a DAG
file does) stays cheap.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ml_jobs.config import FEATURE_REPO_DIR, Paths, quiet_environment
from ml_jobs.feature_contract import raise_problems, source_problems
from ml_jobs.features_duckdb import count_entities, offline_session

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

ONLINE_STORES = {
    "sqlite": "feature_store.yaml",
    "redis": "feature_store.redis.yaml",
}
DEFAULT_REDIS = "127.0.0.1:6379"
# Offline store -> its configuration, for the online stores it is combined with.
OFFLINE_STORES = {"duckdb": ONLINE_STORES, "spark": {"sqlite": "feature_store.spark.yaml"}}

# The definition modules of feature_repo/, in dependency order. They import each other by bare
# name (``from entities import user``), as the Feast CLI loads them.
REPO_MODULES = ("entities", "data_sources", "feature_views", "feature_services")

# Entity name -> (join key, export), per docs/contracts.md section 2; the export's files are
# Paths.export_files(export).
EXPORTS = {
    "user": ("user_id", "user_features"),
    "item": ("item_id", "item_features"),
}
TIMESTAMP_FIELD = "feature_ts"
CREATED_FIELD = "created_ts"

_ROW_ORDER = "__basketcast_row"


def _prepare_environment(paths: Paths) -> None:
    quiet_environment()
    os.environ["BASKETCAST_HOME"] = str(paths.home)
    os.environ.setdefault("BASKETCAST_REDIS", DEFAULT_REDIS)


def _utc(ts: datetime) -> datetime:
    """A timezone-aware UTC datetime; a naive one is taken to be UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def feature_store(paths: Paths, online: str = "sqlite", offline: str | None = None) -> FeatureStore:
    """The basketcast FeatureStore under ``paths.home``, serving online from ``online``.

    ``online`` is ``"sqlite"`` (embedded default) or ``"redis"``. ``offline`` is ``"duckdb"``
    (the Parquet exports) or ``"spark"`` (the Spark-built tables; SQLite online only); unset,
    the deployment's (``spark`` when BASKETCAST_DBT_TARGET is, so serving reads the online
    store the Spark deployment materializes).
    """
    from feast import FeatureStore
    from feast.repo_config import load_repo_config

    from ml_jobs.sources import input_target

    offline = offline or input_target()

    if offline not in OFFLINE_STORES:
        raise ValueError(f"offline must be one of {sorted(OFFLINE_STORES)}, got {offline!r}")
    files = OFFLINE_STORES[offline]
    if online not in files:
        raise ValueError(f"online must be one of {sorted(files)} with {offline}, got {online!r}")
    _prepare_environment(paths)
    paths.feast.mkdir(parents=True, exist_ok=True)
    config = load_repo_config(FEATURE_REPO_DIR, FEATURE_REPO_DIR / files[online])
    project = os.environ.get("BASKETCAST_FEAST_PROJECT")
    if project:
        config.project = project
    return FeatureStore(repo_path=str(FEATURE_REPO_DIR), config=config)


def definitions(paths: Paths, offline: str = "duckdb") -> list[Any]:
    """Fresh Feast objects from feature_repo/: entities, sources, views, services, in order.

    The modules are executed anew on every call, with BASKETCAST_HOME pointing at
    ``paths.home``, because the data sources resolve their Parquet paths at import time, and
    BASKETCAST_OFFLINE_STORE set to ``offline``, which picks the kind of source.
    Whatever was in ``sys.modules`` under the same bare names is put back afterwards.
    """
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    _prepare_environment(paths)
    saved = {name: sys.modules.pop(name) for name in REPO_MODULES if name in sys.modules}
    previous = os.environ.get("BASKETCAST_OFFLINE_STORE")
    os.environ["BASKETCAST_OFFLINE_STORE"] = offline
    sys.path.insert(0, str(FEATURE_REPO_DIR))
    try:
        modules = [importlib.import_module(name) for name in REPO_MODULES]
    finally:
        if previous is None:
            os.environ.pop("BASKETCAST_OFFLINE_STORE")
        else:
            os.environ["BASKETCAST_OFFLINE_STORE"] = previous
        sys.path.remove(str(FEATURE_REPO_DIR))
        for name in REPO_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)

    found: list[Any] = []
    for kind in (Entity, DataSource, FeatureView, FeatureService):
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, kind) and not any(value is seen for seen in found):
                    found.append(value)
    return found


def check_exports(paths: Paths) -> None:
    """Raise ValueError unless both exports exist with the columns and types of the views."""
    from feast import FeatureView

    views = [obj for obj in definitions(paths) if isinstance(obj, FeatureView)]
    problems = source_problems(views, missing_ok=False)
    raise_problems(problems)


def apply(paths: Paths, online: str = "sqlite", offline: str = "duckdb") -> list[str]:
    """Register every feature_repo object (the programmatic ``feast apply``); return the names.

    Views, services and entities that are in the registry but no longer in feature_repo/ are
    removed, with their online tables, as ``feast apply`` does. Exports (or with
    ``offline="spark"`` the Spark tables) that already exist must match the views (see
    ``check_exports``); missing ones may arrive later.
    """
    from feast import FeatureView

    store = feature_store(paths, online, offline)
    objects = definitions(paths, offline)
    views = [o for o in objects if isinstance(o, FeatureView)]
    problems = source_problems(views, True, store.config)
    raise_problems(problems)
    names = {(type(obj).__name__, obj.name) for obj in objects}
    registered: list[Any] = [
        *store.list_feature_services(),
        *store.list_feature_views(),
        *store.list_entities(),
    ]
    stale = [
        obj
        for obj in registered
        if (type(obj).__name__, obj.name) not in names and not obj.name.startswith("__")
    ]
    store.apply(objects, objects_to_delete=stale, partial=False)
    return [obj.name for obj in objects]


def materialize(
    paths: Paths,
    end: datetime,
    start: datetime | None = None,
    online: str = "sqlite",
    engine: str | None = None,
    batch_rows: int = 20_000,
    offline: str = "duckdb",
) -> int:
    """Load the newest snapshot per entity with feature_ts in [start, end] into the online store.

    ``engine="bulk"`` (default on DuckDB) writes Feast's online layout directly in batches of
    ``batch_rows`` entities (``ml_jobs.serving.bulk_write``: same bytes, memory bounded by one
    batch, several times faster); ``engine="feast"`` runs Feast's own ``materialize``, the
    only engine with ``offline="spark"`` (the Spark offline store picks the newest rows in
    Spark SQL over the Spark-built tables).

    With ``start=None`` each view continues from where its last materialization ended, or
    from ``end - ttl`` the first time. (Feast's own materialize_incremental starts a first run
    at now - ttl, which skips historical data entirely.) A late backfill whose feature_ts is
    before the last materialized end is picked up only by a run with an explicit ``start``.
    A window that ends at or before a view's last materialized end is skipped: the online store
    serves the newest values, and a backfill of an older interval must not overwrite them.

    Returns the number of entity rows written, summed over the feature views. Raises
    ValueError, before writing anything, when an export breaks the contract.
    """
    engine = engine or ("feast" if offline == "spark" else "bulk")
    if engine not in ("bulk", "feast") or (engine == "bulk" and offline == "spark"):
        raise ValueError(f"engine must be 'bulk' or 'feast' ('feast' on Spark), got {engine!r}")
    store = feature_store(paths, online, offline)
    problems = source_problems(store.list_feature_views(), False, store.config)
    raise_problems(problems)
    end = _utc(end)
    written = 0
    for view in store.list_feature_views():
        if start is not None:
            view_start = _utc(start)
        elif view.most_recent_end_time is not None:
            view_start = _utc(view.most_recent_end_time)
        else:
            view_start = end - view.ttl
        loaded = view.most_recent_end_time
        if view_start >= end or (loaded is not None and _utc(loaded) >= end):
            continue  # nothing new, or an older window that would overwrite newer online values
        if engine == "bulk":
            from ml_jobs.serving.bulk_write import materialize_view

            written += materialize_view(
                store, view, view_start, end, batch_rows, scratch=paths.scratch
            )
            continue
        source = view.batch_source
        key, stamp = view.join_keys[0], source.timestamp_field
        if offline == "spark":
            from ml_jobs import features_spark

            store.materialize(view_start, end, feature_views=[view.name])
            written += features_spark.count_entities(
                store.config, source.table, key, stamp, view_start, end
            )
            continue
        with offline_session(paths):
            store.materialize(view_start, end, feature_views=[view.name])
        written += count_entities(paths, source.path, key, stamp, view_start, end)
    return written


def _entity_views(store: FeatureStore, entity: str) -> list[Any]:
    views = [view for view in store.list_feature_views() if entity in view.entities]
    if not views:
        raise ValueError(f"no feature view is keyed by entity {entity!r}")
    return views


def _service_feature_names(service: Any) -> list[str]:
    return [field.name for view in service.feature_view_projections for field in view.features]


def _float_features(frame: pd.DataFrame, leading: list[str], names: list[str]) -> pd.DataFrame:
    """``leading`` columns, then ``names`` in order, every feature as float64 (null -> NaN).

    Feast returns a BIGINT feature as int64 or float64 depending on whether the batch happens
    to hold a null, and online columns in no fixed order; models need the same columns in the
    same order with the same types in training and serving.
    """
    out = frame[[*leading, *names]].copy()
    out[names] = out[names].astype("float64")
    return out


def online_features(
    paths: Paths,
    entity: str,
    ids: list[int],
    service: str | None = None,
    online: str = "sqlite",
    offline: str | None = None,
) -> pd.DataFrame:
    """Online feature values for ``ids`` of ``entity`` ("user" or "item"), one row per id,
    from the online store of ``feature_store(paths, online, offline)``.

    ``service`` names a feature service; without one, every feature of the entity's views is
    returned. Columns: the join key, then the features in schema order, all float64. Ids the
    store has never seen come back with NaN features.
    """
    store = feature_store(paths, online, offline)
    join_key = store.get_entity(entity).join_key
    features: Any
    if service is not None:
        features = store.get_feature_service(service)
        names = _service_feature_names(features)
    else:
        views = _entity_views(store, entity)
        features = [f"{view.name}:{field.name}" for view in views for field in view.features]
        names = [field.name for view in views for field in view.features]
    rows = [{join_key: int(i)} for i in ids]
    frame = store.get_online_features(features=features, entity_rows=rows).to_df()
    return _float_features(frame, [join_key], names)


def historical_features(
    paths: Paths,
    entity_df: pd.DataFrame,
    service: str,
    offline: str = "duckdb",
    batch_rows: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Point-in-time correct features of ``service`` for every row of ``entity_df``.

    ``entity_df`` holds the join key(s) and an ``event_timestamp`` column (or exactly one other
    datetime column); naive timestamps are read as UTC. Each row gets the newest snapshot with
    feature_ts <= its timestamp, no older than the view's TTL, and - because retrieval runs with
    ``filter_by_created_timestamp=True`` - with created_ts <= its timestamp: a value backfilled
    later than the row's timestamp is never used, the row falls back to what was known then.
    Rows come back in the order given: the columns of ``entity_df``, then the service's
    features in schema order, all float64 (null -> NaN). ``offline="spark"`` runs the same
    retrieval as Spark SQL over the Spark-built tables (after ``apply(..., offline="spark")``).

    With ``batch_rows``, Feast is asked for at most that many rows at a time, grouped by
    timestamp (see ``entity_batches``): the join of entity rows with snapshots, which grows with
    rows x snapshots per entity, stays bounded whatever the number of rows. ``on_batch(done,
    total)`` is called after each batch with the rows retrieved so far and in all.
    """
    import pandas as pd
    from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df

    from ml_jobs.feature_batches import entity_batches

    store = feature_store(paths, offline=offline)
    frame = entity_df.reset_index(drop=True).copy()
    ts_col = infer_event_timestamp_from_entity_df(dict(frame.dtypes.items()))
    stamps = pd.to_datetime(frame[ts_col])
    frame[ts_col] = (
        stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
    )
    frame[_ROW_ORDER] = range(len(frame))
    feature_service = store.get_feature_service(service)
    names = _service_feature_names(feature_service)
    parts: list[pd.DataFrame] = []
    done = 0
    with offline_session(paths) if offline == "duckdb" else nullcontext():
        for rows in entity_batches(frame[ts_col], batch_rows):
            result = store.get_historical_features(
                entity_df=frame.iloc[rows],
                features=feature_service,
                filter_by_created_timestamp=True,
            ).to_df()
            parts.append(result[[_ROW_ORDER, *names]])
            done += len(rows)
            if on_batch is not None:
                on_batch(done, len(frame))
    found = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    del parts
    result = frame.merge(found, on=_ROW_ORDER, how="left", validate="one_to_one")
    if offline == "spark":
        from ml_jobs.features_spark import utc_timestamps

        result = utc_timestamps(result, [ts_col])
    result = result.sort_values(_ROW_ORDER).reset_index(drop=True)
    return _float_features(result, list(entity_df.columns), names)


def latest_offline_values(
    paths: Paths,
    entity: str,
    ids: Iterable[int] | None,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """The newest exported snapshot per entity, read from the Parquet file with DuckDB.

    "Newest" orders by feature_ts, then created_ts (a backfill of the same snapshot wins), as
    materialization does, so after ``materialize(end=as_of)`` these are the values the online
    store must serve. ``ids=None`` returns every entity; ``as_of`` ignores later snapshots.
    One row per entity found, sorted by id, with every column of the export.
    """
    from ml_jobs.warehouse import scratch_session

    if entity not in EXPORTS:
        raise ValueError(f"entity must be one of {sorted(EXPORTS)}, got {entity!r}")
    join_key, export = EXPORTS[entity]
    filters = ["TRUE"]
    params: list[Any] = [paths.export_files(export)]
    if ids is not None:
        filters.append(f"{join_key} IN (SELECT unnest(?::BIGINT[]))")
        params.append([int(i) for i in ids])
    if as_of is not None:
        filters.append(f"{TIMESTAMP_FIELD} <= ?")
        params.append(_utc(as_of))
    query = f"""
        SELECT * FROM read_parquet(?)
        WHERE {" AND ".join(filters)}
        QUALIFY row_number() OVER (
            PARTITION BY {join_key} ORDER BY {TIMESTAMP_FIELD} DESC, {CREATED_FIELD} DESC
        ) = 1
        ORDER BY {join_key}
    """
    with scratch_session(paths.scratch) as con:
        return con.execute(query, params).df()
