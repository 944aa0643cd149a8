"""The bulk materialization path and the lean reader speak Feast's online layout exactly.

Same exports (tests/test_features.py: backfills, nulls, a new user on D3), same windows:
Feast's own ``materialize`` in one home or Redis project, ``engine="bulk"`` in another. The
online stores must then hold byte-identical rows / hashes, the registry the same intervals,
and the lean reader must return what ``get_online_features`` returns.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from test_features import (
    DAYS,
    ITEM_FEATURES,
    ITEM_FEATURES_V1,
    USER_FEATURES,
    USER_FEATURES_V1,
    write_exports,
)

from ml_jobs import features
from ml_jobs.config import Paths
from ml_jobs.serving import bulk_write, layout
from ml_jobs.serving.reader import OnlineReader

WINDOWS = [DAYS[1] + timedelta(hours=12), DAYS[3] + timedelta(days=1)]
TABLES = ("basketcast_user_activity", "basketcast_item_demand")
IDS = {"user": [3, 1, 424242, 2, 1], "item": [20, 10, 99]}


def _home(root: Path, name: str) -> Paths:
    paths = Paths((root / name).resolve())
    write_exports(paths)
    return paths


def _materialize_both(paths_by_engine: dict[str, Paths], online: str) -> dict[str, list[int]]:
    counts = {}
    for engine, paths in paths_by_engine.items():
        features.apply(paths, online=online)
        counts[engine] = [
            features.materialize(paths, end=end, online=online, engine=engine) for end in WINDOWS
        ]
    return counts


@pytest.fixture(autouse=True, scope="module")
def _restore_environment() -> Iterator[None]:
    """The feature store client sets BASKETCAST_HOME / BASKETCAST_REDIS: put them back."""
    keys = ("BASKETCAST_HOME", "BASKETCAST_REDIS", "BASKETCAST_FEAST_PROJECT")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.pop("BASKETCAST_FEAST_PROJECT", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def sqlite_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Paths]:
    root = tmp_path_factory.mktemp("bulk")
    homes = {engine: _home(root, engine) for engine in ("feast", "bulk")}
    counts = _materialize_both(homes, "sqlite")
    assert counts == {"feast": [4, 5], "bulk": [4, 5]}
    return homes


def _rows(paths: Paths, table: str) -> list[tuple]:
    with sqlite3.connect(paths.feast / "online_store.db") as con:
        return sorted(con.execute(f'SELECT * FROM "{table}"').fetchall())


def test_entity_key_and_values_match_feast_serialization() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    ids = np.array([0, 1, 7, 2**40, -5, 2**63 - 1], dtype="int64")
    want = [
        serialize_entity_key(
            EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=int(i))]), 3
        )
        for i in ids
    ]
    assert layout.entity_keys("user_id", ids) == want

    ints = np.array([0, 1, 127, 128, 300, -1, 2**62, 5], dtype="int64")
    nulls = np.array([False] * 7 + [True])
    expected = [Value(int64_val=int(v)).SerializeToString() for v in ints[:7]] + [b""]
    assert layout.encode_int64(ints, nulls) == expected
    floats = np.array([0.0, -1.5, 1e300, 1 / 3, 0.0])
    nulls = np.array([False] * 4 + [True])
    expected = [Value(double_val=float(v)).SerializeToString() for v in floats[:4]] + [b""]
    assert layout.encode_float64(floats, nulls) == expected
    for raw, value in zip(expected[:4], floats[:4], strict=True):
        assert layout.decode_value(raw) == value
    assert [layout.decode_value(Value(int64_val=int(v)).SerializeToString()) for v in ints] == [
        float(v) for v in ints
    ]
    assert layout.decode_value(b"") is None
    mixed = [expected[1], None, b"", Value(int64_val=-3).SerializeToString(), expected[0]]
    np.testing.assert_array_equal(layout.decode_many(mixed), [-1.5, np.nan, np.nan, -3.0, 0.0])


def test_sqlite_rows_are_byte_identical_to_feast_materialize(
    sqlite_homes: dict[str, Paths],
) -> None:
    for table in TABLES:
        feast_rows, bulk_rows = (_rows(sqlite_homes[e], table) for e in ("feast", "bulk"))
        # 3 users and 2 items x every feature of their view, nulls included as b"".
        features_per_entity = {
            "basketcast_user_activity": 3 * len(USER_FEATURES),
            "basketcast_item_demand": 2 * len(ITEM_FEATURES),
        }
        assert len(feast_rows) == features_per_entity[table]
        assert bulk_rows == feast_rows
    # The registry records the same materialized intervals, so incremental runs agree too.
    ends = {
        engine: {
            v.name: v.most_recent_end_time for v in features.feature_store(p).list_feature_views()
        }
        for engine, p in sqlite_homes.items()
    }
    assert ends["bulk"] == ends["feast"]
    assert set(ends["bulk"].values()) == {WINDOWS[-1]}


def test_lean_reader_equals_get_online_features(sqlite_homes: dict[str, Paths]) -> None:
    paths = sqlite_homes["bulk"]
    reader = OnlineReader(features.feature_store(paths))
    for entity, service, names in (
        ("user", "propensity_v1", USER_FEATURES_V1),
        ("item", "demand_v1", ITEM_FEATURES_V1),
        ("user", "propensity_v2", USER_FEATURES),
        ("item", "demand_v2", ITEM_FEATURES),
        ("user", None, USER_FEATURES),
    ):
        ids = IDS[entity]
        got = reader.read(reader.feature_set(entity, service), ids)
        want = features.online_features(paths, entity, ids, service=service)
        assert list(got.features) == names
        np.testing.assert_array_equal(got.values, want[names].to_numpy())
        assert got.found.tolist() == [i not in (424242, 99) for i in ids]
    with pytest.raises(KeyError, match="unknown feature service 'nope_v9'"):
        reader.feature_set("user", "nope_v9")
    with pytest.raises(KeyError, match="not keyed by entity 'item'"):
        reader.feature_set("item", "propensity_v1")


def test_batches_bound_memory_and_give_the_same_rows(tmp_path: Path) -> None:
    """batch_rows=2 streams 3 users at most 2 at a time, with the same rows as one batch."""
    paths = _home(tmp_path, "small_batches")
    features.apply(paths)
    store = features.feature_store(paths)
    view = store.get_feature_view("user_activity")
    spec = layout.view_layout(store.project, view)
    source = view.batch_source
    sizes = [len(b) for b in bulk_write.read_newest(spec, source.path, DAYS[0], WINDOWS[-1], 2)]
    assert sum(sizes) == 3 and max(sizes) <= 2  # never more than batch_rows at once
    assert features.materialize(paths, end=WINDOWS[-1], batch_rows=2) == 5
    reference = _home(tmp_path, "one_batch")
    features.apply(reference)
    features.materialize(reference, end=WINDOWS[-1])
    for table in TABLES:
        assert _rows(paths, table) == _rows(reference, table)
    with pytest.raises(ValueError, match="engine must be 'bulk' or 'feast'"):
        features.materialize(paths, end=WINDOWS[-1], engine="spark")


@pytest.fixture
def redis_projects(tmp_path: Path) -> Iterator[tuple[dict[str, Paths], dict[str, str], object]]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    tag = uuid.uuid4().hex[:10]
    projects = {engine: f"basketcast_t{tag}_{engine}" for engine in ("feast", "bulk")}
    homes = {engine: _home(tmp_path, engine) for engine in projects}
    try:
        yield homes, projects, client
    finally:
        os.environ.pop("BASKETCAST_FEAST_PROJECT", None)
        for project in projects.values():
            leftover = list(client.scan_iter(match=f"*{project}"))
            if leftover:
                client.delete(*leftover)
        client.close()


def test_redis_hashes_are_byte_identical_to_feast_materialize(redis_projects) -> None:
    homes, projects, client = redis_projects
    hashes = {}
    for engine, paths in homes.items():
        os.environ["BASKETCAST_FEAST_PROJECT"] = projects[engine]
        features.apply(paths, online="redis")
        counts = [
            features.materialize(paths, end=end, online="redis", engine=engine) for end in WINDOWS
        ]
        assert counts == [4, 5]
        suffix = projects[engine].encode()
        hashes[engine] = {
            key[: -len(suffix)]: client.hgetall(key)
            for key in client.scan_iter(match=f"*{projects[engine]}")
        }
    assert len(hashes["feast"]) == 5  # 3 users + 2 items
    assert hashes["bulk"] == hashes["feast"]

    # The lean reader on Redis returns what the SDK returns, unknown ids flagged.
    os.environ["BASKETCAST_FEAST_PROJECT"] = projects["bulk"]
    store = features.feature_store(homes["bulk"], online="redis")
    reader = OnlineReader(store)
    assert reader.kind == "redis"
    for entity, service, names in (
        ("user", "propensity_v1", USER_FEATURES_V1),
        ("item", "demand_v1", ITEM_FEATURES_V1),
        ("user", "propensity_v2", USER_FEATURES),
        ("item", "demand_v2", ITEM_FEATURES),
    ):
        ids = IDS[entity]
        got = reader.read(reader.feature_set(entity, service), ids)
        want = features.online_features(homes["bulk"], entity, ids, service, online="redis")
        np.testing.assert_array_equal(got.values, want[names].to_numpy())
        assert got.found.tolist() == [i not in (424242, 99) for i in ids]
    # Consistency: online (Redis) == newest offline snapshot for every known user.
    offline = features.latest_offline_values(homes["bulk"], "user", [1, 2, 3])
    got = reader.read(reader.feature_set("user"), [1, 2, 3])
    np.testing.assert_array_equal(got.values, offline[USER_FEATURES].to_numpy(dtype="float64"))
