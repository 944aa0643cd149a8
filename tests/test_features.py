"""The Feast feature store end to end: real Feast, real DuckDB offline store, SQLite and Redis.

Each test builds a basketcast home in a temporary folder with small feature exports that
follow docs/contracts.md section 2 exactly (BIGINT ids and counts, DOUBLE rates, feature_ts and
created_ts as timestamp[us, tz=UTC]).

The snapshots: day D is stamped feature_ts = D 00:00 UTC and built (created_ts) at D 01:00.

- user 1: D0..D3, plus a late backfill of its D1 snapshot created at D1 20:00, written last.
- user 2: D0..D3, nulls in the nullable rates.
- user 3: D3 only (a new shopper).
- items 10, 20: D0..D3, plus a backfill of item 10's D3 snapshot created at D3 05:00.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_jobs import features
from ml_jobs.config import QUIET_ENV, Paths

D0 = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = [D0 + timedelta(days=n) for n in range(4)]
BUILD_DELAY = timedelta(hours=1)
BACKFILL_VIEWS = 9999  # user 1's backfilled views_7d for D1
BACKFILL_CREATED = DAYS[1] + timedelta(hours=20)
ITEM_BACKFILL_UNITS = 777  # item 10's backfilled units_7d for D3

USER_INT = [
    "views_7d",
    "carts_7d",
    "purchases_7d",
    "views_28d",
    "carts_28d",
    "purchases_28d",
    "purchases_90d",
]
USER_COLUMNS = [
    ("user_id", pa.int64()),
    ("feature_ts", pa.timestamp("us", tz="UTC")),
    ("created_ts", pa.timestamp("us", tz="UTC")),
    *[(name, pa.int64()) for name in USER_INT],
    ("spend_90d", pa.float64()),
    ("days_since_last_purchase", pa.float64()),
    ("active_days_28d", pa.int64()),
    ("cart_to_purchase_28d", pa.float64()),
    ("views_90d", pa.int64()),
    ("carts_90d", pa.int64()),
    ("view_to_cart_28d", pa.float64()),
    ("orders_90d", pa.int64()),
    ("avg_basket_units_90d", pa.float64()),
    ("avg_order_value_90d", pa.float64()),
    ("top_category_share_28d", pa.float64()),
    ("category_entropy_28d", pa.float64()),
    ("categories_28d", pa.int64()),
    ("top_purchase_category_share_28d", pa.float64()),
]
ITEM_COLUMNS = [
    ("item_id", pa.int64()),
    ("feature_ts", pa.timestamp("us", tz="UTC")),
    ("created_ts", pa.timestamp("us", tz="UTC")),
    ("units_7d", pa.int64()),
    ("units_28d", pa.int64()),
    ("views_7d", pa.int64()),
    ("views_28d", pa.int64()),
    ("carts_7d", pa.int64()),
    ("view_to_purchase_28d", pa.float64()),
    ("avg_price_28d", pa.float64()),
    ("list_price", pa.float64()),
    ("is_promo", pa.int64()),
    ("review_count_90d", pa.int64()),
    ("avg_rating_90d", pa.float64()),
    ("trend_7d_vs_28d", pa.float64()),
    ("carts_28d", pa.int64()),
    ("price_vs_category_median", pa.float64()),
    ("avg_sentiment_90d", pa.float64()),
]
# Every feature of each view, in schema order (what a request without a service returns).
USER_FEATURES = [name for name, _ in USER_COLUMNS[3:]]
ITEM_FEATURES = [name for name, _ in ITEM_COLUMNS[3:]]
# The v1 services keep the features they were defined with; v2 lists every feature.
USER_FEATURES_V1 = USER_FEATURES[: USER_FEATURES.index("cart_to_purchase_28d") + 1]
ITEM_FEATURES_V1 = ITEM_FEATURES[: ITEM_FEATURES.index("trend_7d_vs_28d") + 1]


def _views_7d(user_id: int, day: int) -> int:
    """user_id * 100 + day: every snapshot is recognisable by its views_7d."""
    return user_id * 100 + day


def user_row(user_id: int, day: int, created: datetime | None = None, views: int | None = None):
    n = _views_7d(user_id, day)
    return {
        "user_id": user_id,
        "feature_ts": DAYS[day],
        "created_ts": created or DAYS[day] + BUILD_DELAY,
        "views_7d": views if views is not None else n,
        "carts_7d": n % 7,
        "purchases_7d": n % 3,
        "views_28d": n * 4,
        "carts_28d": n % 11,
        "purchases_28d": n % 5,
        "purchases_90d": n % 13,
        "spend_90d": n * 1.5,
        "days_since_last_purchase": None if user_id == 2 else float(day + 1),
        "active_days_28d": day + 2,
        "cart_to_purchase_28d": None if user_id == 2 else 0.25 * (day + 1),
        "views_90d": n * 12,
        "carts_90d": n % 17,
        "view_to_cart_28d": None if user_id == 2 else 0.1 * (day + 1),
        "orders_90d": n % 13,
        "avg_basket_units_90d": None if user_id == 2 else 1.5 + day,
        "avg_order_value_90d": None if user_id == 2 else 20.0 + day,
        "top_category_share_28d": 0.5 + 0.1 * day,
        "category_entropy_28d": 1.0 - 0.2 * day,
        "categories_28d": day + 1,
        "top_purchase_category_share_28d": None if user_id == 2 else 1.0,
    }


def item_row(item_id: int, day: int, created: datetime | None = None, units: int | None = None):
    n = item_id * 10 + day
    return {
        "item_id": item_id,
        "feature_ts": DAYS[day],
        "created_ts": created or DAYS[day] + BUILD_DELAY,
        "units_7d": units if units is not None else n,
        "units_28d": n * 4,
        "views_7d": n * 9,
        "views_28d": n * 30,
        "carts_7d": n * 2,
        "view_to_purchase_28d": 1 / 30,
        "avg_price_28d": 10.0 + day,
        "list_price": 12.5,
        "is_promo": day % 2,
        "review_count_90d": day,
        "avg_rating_90d": 4.0 if day else None,
        "trend_7d_vs_28d": 1.0,
        "carts_28d": n * 8,
        "price_vs_category_median": 1.25,
        "avg_sentiment_90d": 0.5 if day else None,
    }


def _write(path: Path, rows: list[dict[str, Any]], columns: list[tuple[str, pa.DataType]]):
    schema = pa.schema(columns)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path)


def write_exports(paths: Paths) -> None:
    """The exports as dbt lays them out, a folder of Parquet files per table; here one file
    per snapshot day (dbt writes one per month), so every read spans several files."""
    users = [user_row(u, d) for u in (1, 2) for d in range(4)] + [user_row(3, 3)]
    users.append(user_row(1, 1, created=BACKFILL_CREATED, views=BACKFILL_VIEWS))
    items = [item_row(i, d) for i in (10, 20) for d in range(4)]
    items.append(item_row(10, 3, created=DAYS[3] + timedelta(hours=5), units=ITEM_BACKFILL_UNITS))
    for name, rows, columns in (
        ("user_features", users, USER_COLUMNS),
        ("item_features", items, ITEM_COLUMNS),
    ):
        paths.export_dir(name).mkdir(parents=True, exist_ok=True)
        for day in DAYS:
            on_day = [row for row in rows if row["feature_ts"] == day]
            _write(paths.export_dir(name) / f"{day:%Y-%m-%d}.parquet", on_day, columns)


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A basketcast home with exports; env vars the client sets are restored afterwards."""
    home = tmp_path / "home"
    monkeypatch.setenv("BASKETCAST_HOME", str(home))
    monkeypatch.delenv("BASKETCAST_REDIS", raising=False)
    monkeypatch.delenv("BASKETCAST_FEAST_PROJECT", raising=False)
    for key, value in QUIET_ENV.items():
        monkeypatch.setenv(key, value)
    result = Paths(home.resolve())
    write_exports(result)
    return result


@pytest.fixture
def applied(paths: Paths) -> Paths:
    features.apply(paths)
    return paths


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def assert_rows_equal(got: pd.DataFrame, want: pd.DataFrame, key: str, columns: list[str]):
    got = got.set_index(key)
    want = want.set_index(key)
    assert sorted(got.index) == sorted(want.index)
    for entity_id in want.index:
        for column in columns:
            g, w = got.at[entity_id, column], want.at[entity_id, column]
            g = g.item() if hasattr(g, "item") else g
            w = w.item() if hasattr(w, "item") else w
            assert _same(g, w), f"{key}={entity_id} {column}: online {g!r} != offline {w!r}"


def test_apply_registers_entities_views_and_services(paths: Paths) -> None:
    started = time.perf_counter()
    names = features.apply(paths)
    elapsed = time.perf_counter() - started

    assert names == [
        "user",
        "item",
        "user_features_source",
        "item_features_source",
        "user_activity",
        "item_demand",
        "demand_v1",
        "propensity_v1",
        "demand_v2",
        "propensity_v2",
    ]
    store = features.feature_store(paths)
    assert store.project == "basketcast"
    assert sorted(e.name for e in store.list_entities()) == ["item", "user"]
    assert {e.name: e.join_key for e in store.list_entities()} == {
        "item": "item_id",
        "user": "user_id",
    }
    views = {v.name: v for v in store.list_feature_views()}
    assert sorted(views) == ["item_demand", "user_activity"]
    assert [f.name for f in views["user_activity"].features] == USER_FEATURES
    assert [f.name for f in views["item_demand"].features] == ITEM_FEATURES
    assert views["item_demand"].ttl == timedelta(days=90)
    assert views["user_activity"].batch_source.path == paths.export_files("user_features")
    services = {s.name: s for s in store.list_feature_services()}
    assert sorted(services) == ["demand_v1", "demand_v2", "propensity_v1", "propensity_v2"]
    for name, view, listed in (
        ("demand_v1", "item_demand", ITEM_FEATURES_V1),
        ("propensity_v1", "user_activity", USER_FEATURES_V1),
        ("demand_v2", "item_demand", ITEM_FEATURES),
        ("propensity_v2", "user_activity", USER_FEATURES),
    ):
        projections = services[name].feature_view_projections
        assert [p.name for p in projections] == [view], name
        assert [f.name for f in projections[0].features] == listed, name
    assert (paths.feast / "registry.db").exists()

    # Applying again is a no-op that keeps the same objects.
    assert features.apply(paths) == names
    assert len(features.feature_store(paths).list_feature_views()) == 2

    # Like `feast apply`, objects no longer defined in feature_repo/ are removed.
    from feast import FeatureService

    store.apply(FeatureService(name="retired_v0", features=[views["item_demand"]]))
    assert "retired_v0" in {s.name for s in features.feature_store(paths).list_feature_services()}
    features.apply(paths)
    assert sorted(s.name for s in features.feature_store(paths).list_feature_services()) == [
        "demand_v1",
        "demand_v2",
        "propensity_v1",
        "propensity_v2",
    ]
    print(f"apply: {elapsed:.2f}s")


def test_materialize_serves_newest_offline_values(applied: Paths) -> None:
    paths = applied
    end = DAYS[3] + timedelta(days=1)

    started = time.perf_counter()
    # Incremental, first run: starts at end - ttl; user 1, 2 and items 10, 20 have snapshots.
    assert features.materialize(paths, end=DAYS[1] + timedelta(hours=12)) == 4
    # Incremental, second run: continues from the previous end; user 3 appears on D3.
    assert features.materialize(paths, end=end) == 5
    elapsed = time.perf_counter() - started
    # Nothing new up to the same end.
    assert features.materialize(paths, end=end) == 0
    assert (paths.feast / "online_store.db").exists()

    online = features.online_features(paths, "user", [1, 2, 3])
    offline = features.latest_offline_values(paths, "user", [1, 2, 3])
    assert list(offline["views_7d"]) == [_views_7d(1, 3), _views_7d(2, 3), _views_7d(3, 3)]
    # Join key, then the features in schema order; every feature float64 in every call.
    assert list(online.columns) == ["user_id", *USER_FEATURES]
    assert (online[USER_FEATURES].dtypes == "float64").all()
    assert list(online["user_id"]) == [1, 2, 3]
    assert_rows_equal(online, offline, "user_id", USER_FEATURES)

    # A backfill of the newest snapshot (same feature_ts, later created_ts) is what is served.
    items = features.online_features(paths, "item", [10, 20], service="demand_v2")
    latest_items = features.latest_offline_values(paths, "item", None)
    assert latest_items.loc[latest_items["item_id"] == 10, "units_7d"].item() == (
        ITEM_BACKFILL_UNITS
    )
    assert_rows_equal(items, latest_items, "item_id", ITEM_FEATURES)
    print(f"materialize x2: {elapsed:.2f}s")


def test_explicit_window_rematerializes(applied: Paths) -> None:
    # Only D0..D1 in the window: the online store holds D1 (user 1's D1 backfill wins).
    written = features.materialize(applied, start=DAYS[0], end=DAYS[1])
    assert written == 4
    online = features.online_features(applied, "user", [1, 2])
    assert list(online["views_7d"]) == [BACKFILL_VIEWS, _views_7d(2, 1)]
    as_of = features.latest_offline_values(applied, "user", [1, 2], as_of=DAYS[1])
    assert_rows_equal(online, as_of, "user_id", USER_FEATURES)


def test_exports_that_break_the_contract_are_refused(applied: Paths) -> None:
    features.check_exports(applied)  # the fixture's exports follow the contract
    path = applied.export_dir("user_features") / f"{DAYS[2]:%Y-%m-%d}.parquet"
    table = pq.read_table(path)
    # A DOUBLE where the contract says BIGINT: Feast would truncate it online and return it
    # unchanged offline. Also a naive feature_ts and a dropped column.
    views = pa.array([v + 0.7 for v in table["views_7d"].to_pylist()], pa.float64())
    table = table.set_column(table.schema.get_field_index("views_7d"), "views_7d", views)
    naive = table["feature_ts"].cast(pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("feature_ts"), "feature_ts", naive)
    pq.write_table(table.drop(["carts_7d"]), path)

    with pytest.raises(ValueError) as refused:
        features.materialize(applied, end=DAYS[3] + timedelta(days=1))
    message = str(refused.value)
    assert "views_7d is double, expected int64" in message
    assert "carts_7d is missing" in message
    assert "feature_ts is timestamp[us], expected a UTC timestamp" in message
    assert path.name in message  # the one file that breaks it, among files that do not
    with pytest.raises(ValueError, match="views_7d"):
        features.check_exports(applied)
    with pytest.raises(ValueError, match="views_7d"):
        features.apply(applied)
    # Nothing was written online.
    assert features.online_features(applied, "item", [10])[ITEM_FEATURES].isna().all(axis=None)


def test_unknown_ids_have_null_features(applied: Paths) -> None:
    features.materialize(applied, end=DAYS[3] + timedelta(days=1))
    online = features.online_features(applied, "user", [1, 424242], service="propensity_v2")
    assert list(online["user_id"]) == [1, 424242]
    assert online.loc[0, "views_7d"] == _views_7d(1, 3)
    assert online.loc[1, USER_FEATURES].isna().all()
    assert features.latest_offline_values(applied, "user", [424242]).empty


def _historical(paths: Paths, rows: list[tuple[int, datetime]], **extra: list[Any]):
    entity_df = pd.DataFrame(
        {"user_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows], **extra}
    )
    return features.historical_features(paths, entity_df, "propensity_v1")


def test_point_in_time_uses_the_snapshot_known_at_the_row(applied: Paths) -> None:
    rows = [
        (2, DAYS[2] + timedelta(hours=12)),  # between D2 and D3: D2, never D3
        (2, DAYS[1] + timedelta(hours=12)),  # between D1 and D2: D1
        (2, DAYS[3] + timedelta(hours=12)),  # after the newest: D3
        (2, DAYS[2] + timedelta(minutes=30)),  # D2 stamped but built at 01:00: still D1
        (2, DAYS[3] + timedelta(days=100)),  # past the 90-day TTL: null
        (3, DAYS[3] + timedelta(minutes=30)),  # user 3's only snapshot not built yet: null
        (3, DAYS[3] + timedelta(hours=2)),  # now built: D3
        (424242, DAYS[3]),  # unknown user: null
    ]
    out = _historical(applied, rows, label=list(range(len(rows))))

    # Rows come back in the order given, extra columns kept, timestamps in UTC.
    assert list(out["label"]) == list(range(len(rows)))
    assert list(out["user_id"]) == [r[0] for r in rows]
    assert str(out["event_timestamp"].dt.tz) == "UTC"
    views = [None if pd.isna(v) else int(v) for v in out["views_7d"]]
    assert views == [
        _views_7d(2, 2),
        _views_7d(2, 1),
        _views_7d(2, 3),
        _views_7d(2, 1),
        None,
        None,
        _views_7d(3, 3),
        None,
    ]
    # Nullable rates stay null (user 2 has no carts), they are not turned into zeros.
    assert out.loc[0, ["days_since_last_purchase", "cart_to_purchase_28d"]].isna().all()
    assert out.loc[0, "spend_90d"] == pytest.approx(_views_7d(2, 2) * 1.5)


def test_late_backfill_does_not_leak_into_earlier_rows(applied: Paths) -> None:
    """filter_by_created_timestamp: a row at time t only sees snapshots with created_ts <= t.

    User 1's D1 snapshot was re-issued at D1 20:00 (same feature_ts, views_7d = 9999). A row at
    D1 12:00 must get the original D1 values; a row after 20:00 gets the backfill, since by
    then it was known; a row on D2 gets the D2 snapshot (newer feature_ts wins).
    """
    rows = [
        (1, DAYS[1] + timedelta(hours=12)),
        (1, BACKFILL_CREATED - timedelta(seconds=1)),
        (1, BACKFILL_CREATED),
        (1, DAYS[1] + timedelta(hours=22)),
        (1, DAYS[2] + timedelta(hours=12)),
    ]
    out = _historical(applied, rows)
    assert list(out["views_7d"]) == [
        _views_7d(1, 1),
        _views_7d(1, 1),
        BACKFILL_VIEWS,
        BACKFILL_VIEWS,
        _views_7d(1, 2),
    ]

    # The same retrieval without the created-timestamp filter leaks the backfill: this is
    # what the filter guards against.
    store = features.feature_store(applied)
    leaky = store.get_historical_features(
        entity_df=pd.DataFrame({"user_id": [1], "event_timestamp": [rows[0][1]]}),
        features=store.get_feature_service("propensity_v1"),
    ).to_df()
    assert leaky["views_7d"].tolist() == [BACKFILL_VIEWS]


def test_naive_entity_timestamps_are_utc(applied: Paths) -> None:
    naive = (DAYS[2] + timedelta(hours=12)).replace(tzinfo=None)
    out = _historical(applied, [(2, naive)])
    assert out.loc[0, "views_7d"] == _views_7d(2, 2)


def test_demand_service_for_training(applied: Paths) -> None:
    entity_df = pd.DataFrame(
        {"item_id": [10, 20], "event_timestamp": [DAYS[3] + timedelta(hours=3)] * 2}
    )
    for service, names in (("demand_v1", ITEM_FEATURES_V1), ("demand_v2", ITEM_FEATURES)):
        out = features.historical_features(applied, entity_df, service)
        assert list(out.columns) == ["item_id", "event_timestamp", *names]
        # No nulls here, yet BIGINT features are float64, as they are online: one type.
        assert (out[names].dtypes == "float64").all()
        # At 03:00 item 10's D3 backfill (created 05:00) is not known yet: the original row.
        assert list(out["units_7d"]) == [10 * 10 + 3, 20 * 10 + 3]


def test_redis_round_trip(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    redis = pytest.importorskip("redis", reason="the redis client (feast[redis]) is not installed")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    project = f"basketcast_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("BASKETCAST_FEAST_PROJECT", project)
    pattern = f"*{project}"

    store = features.feature_store(paths, online="redis")
    assert store.project == project
    assert store.config.online_store.type == "redis"
    try:
        features.apply(paths, online="redis")
        assert features.materialize(paths, end=DAYS[3] + timedelta(days=1), online="redis") == 5
        # Keys end with the project name: 3 users + 2 items.
        assert len(list(client.scan_iter(match=pattern))) == 5

        online = features.online_features(paths, "user", [1, 2, 3, 424242], online="redis")
        offline = features.latest_offline_values(paths, "user", [1, 2, 3])
        assert online.loc[online["user_id"] == 424242, USER_FEATURES].isna().all(axis=None)
        assert_rows_equal(online[online["user_id"] != 424242], offline, "user_id", USER_FEATURES)
        items = features.online_features(paths, "item", [10, 20], "demand_v2", online="redis")
        assert_rows_equal(
            items, features.latest_offline_values(paths, "item", [10, 20]), "item_id", ITEM_FEATURES
        )
    finally:
        features.feature_store(paths, online="redis").teardown()
        leftover = list(client.scan_iter(match=pattern))
        if leftover:
            client.delete(*leftover)
        client.close()
    assert leftover == []
