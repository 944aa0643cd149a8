"""Materialization speed and memory: Feast's own path, basketcast's bulk path, the raw floor.

    .venv/bin/python bench/feature_store.py                         # 100k users, both stores
    .venv/bin/python bench/feature_store.py --users 1000000 --no-feast
    .venv/bin/python bench/feature_store.py --users 20000 --no-record

Setup, as in the issue: N users x 20 Float64 features, one snapshot each, in a Parquet file
read by Feast's DuckDB offline store; a private Feast project per run (SQLite file in a temp
folder, or Redis at $BASKETCAST_REDIS / 127.0.0.1:6379 with its keys deleted afterwards).

Per store, one run each of:
- feast: ``FeatureStore.materialize`` as Feast 0.67 ships it;
- bulk:  ``ml_jobs.serving.bulk_write.materialize_view`` (what ``basketcast features`` runs);
- floor: the same rows / hashes, encoded beforehand batch by batch (encoding not timed),
  written with the same statement / pipeline: only the store write is timed.
Memory is the peak RSS growth of the process during the bulk run (sampled every 10 ms).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml_jobs.config import quiet_environment
from ml_jobs.serving import bulk_write
from ml_jobs.serving.layout import view_layout

RESULTS = Path(__file__).with_name("RESULTS.md")
FEATURES = 20
SNAPSHOT = datetime(2026, 3, 1, tzinfo=UTC)
BATCH_ROWS = bulk_write.DEFAULT_BATCH_ROWS


def write_export(path: Path, users: int, features: int = FEATURES, chunk: int = 200_000) -> None:
    """N users x ``features`` random float64 features, one snapshot each."""
    rng = np.random.default_rng(7)
    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("feature_ts", pa.timestamp("us", tz="UTC")),
            ("created_ts", pa.timestamp("us", tz="UTC")),
            *[(f"f{i:02d}", pa.float64()) for i in range(features)],
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, users, chunk):
            n = min(chunk, users - lo)
            columns = [
                pa.array(np.arange(lo + 1, lo + n + 1, dtype="int64")),
                pa.array([SNAPSHOT] * n, pa.timestamp("us", tz="UTC")),
                pa.array([SNAPSHOT + timedelta(hours=1)] * n, pa.timestamp("us", tz="UTC")),
                *[pa.array(rng.random(n) * 100) for _ in range(features)],
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def bench_store(
    folder: Path, online: str, features: int = FEATURES, project: str | None = None
) -> tuple[Any, Any]:
    """A private Feast project over ``folder/users.parquet``: (store, feature view).

    A new random project unless ``project`` names one to open again (apply is idempotent).
    """
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.repo_config import RepoConfig
    from feast.types import Float64
    from feast.value_type import ValueType

    online_store: dict[str, Any] = {"type": "sqlite", "path": str(folder / "online.db")}
    if online == "redis":
        redis = os.environ.get("BASKETCAST_REDIS", "127.0.0.1:6379")
        online_store = {"type": "redis", "connection_string": redis}
    config = RepoConfig(
        project=project or f"bench_{uuid.uuid4().hex[:10]}",
        registry=str(folder / "registry.db"),
        provider="local",
        offline_store={"type": "duckdb"},
        online_store=online_store,
        entity_key_serialization_version=3,
        repo_path=str(folder),
    )
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="users",
        path=str(folder / "users.parquet"),
        timestamp_field="feature_ts",
        created_timestamp_column="created_ts",
    )
    view = FeatureView(
        name="user_bench",
        entities=[user],
        ttl=timedelta(days=90),
        schema=[Field(name=f"f{i:02d}", dtype=Float64) for i in range(features)],
        source=source,
        online=True,
    )
    store.apply([user, source, view])
    return store, store.get_feature_view("user_bench")


def clear_online(store: Any, view: Any) -> None:
    """Empty the view's online rows / keys, so every run writes into an empty store."""
    layout = view_layout(store.project, view)
    if store.config.online_store.type == "sqlite":
        with sqlite3.connect(store.config.online_store.path) as con:
            con.execute(f'DELETE FROM "{layout.sqlite_table}"')
        return
    client = redis_client(store)
    keys = list(client.scan_iter(match=f"*{store.project}", count=10_000))
    for lo in range(0, len(keys), 10_000):
        client.delete(*keys[lo : lo + 10_000])


def redis_client(store: Any) -> Any:
    from feast.infra.online_stores.redis import RedisOnlineStore

    return RedisOnlineStore()._get_client(store.config.online_store)


class PeakRss:
    """Peak resident memory growth while the block runs, sampled from /proc every 10 ms."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def run_floor(store: Any, view: Any, start: datetime, end: datetime) -> float:
    """Seconds spent in the store writes alone, for the same rows the bulk path writes."""
    layout = view_layout(store.project, view)
    source = view.batch_source
    sqlite = store.config.online_store.type == "sqlite"
    batches = bulk_write.read_newest(layout, source.path, start, end, BATCH_ROWS, key_order=sqlite)
    spent = 0.0
    if sqlite:
        statement = bulk_write.sqlite_upsert(layout.sqlite_table)
        con = bulk_write.sqlite_connect(store.config.online_store.path)
        for batch in batches:
            rows = list(bulk_write.sqlite_rows(layout, batch))
            started = time.perf_counter()
            with con:
                con.executemany(statement, rows)
            spent += time.perf_counter() - started
        con.close()
        return spent
    client = redis_client(store)
    for batch in batches:
        keys, mappings = bulk_write.redis_mappings(layout, batch)
        started = time.perf_counter()
        with client.pipeline(transaction=False) as pipe:
            for key, mapping in zip(keys, mappings, strict=True):
                pipe.hset(key, mapping=mapping)
            pipe.execute()
        spent += time.perf_counter() - started
    return spent


def bench(users: int, online: str, feast: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="basketcast-bench-fs-") as tmp:
        folder = Path(tmp)
        write_export(folder / "users.parquet", users)
        store, view = bench_store(folder, online)
        start, end = SNAPSHOT - timedelta(days=1), SNAPSHOT + timedelta(days=1)
        out: dict[str, Any] = {"users": users, "store": online}
        try:
            if feast:
                started = time.perf_counter()
                store.materialize(start, end, feature_views=[view.name])
                out["feast_s"] = time.perf_counter() - started
                clear_online(store, view)
            with PeakRss() as memory:
                started = time.perf_counter()
                written = bulk_write.materialize_view(store, view, start, end)
                out["bulk_s"] = time.perf_counter() - started
            assert written == users, (written, users)
            out["bulk_mb"] = memory.growth_mb
            clear_online(store, view)
            out["floor_s"] = run_floor(store, view, start, end)
        finally:
            if online == "redis":
                clear_online(store, view)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--no-feast", action="store_true", help="skip Feast's own materialize")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    quiet_environment()

    results = []
    for online in args.stores.split(","):
        result = bench(args.users, online, feast=not args.no_feast)
        results.append(result)
        print(result, flush=True)

    def rate(seconds: float | None) -> str:
        return "—" if seconds is None else f"{args.users / seconds:,.0f}"

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    machine += f", load average {os.getloadavg()[0]:.1f} at the end"
    lines = [
        f"### Materialization — {args.users:,} users × {FEATURES} Float64 features",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · one run each · "
        "entity rows/s; ratio = bulk time / floor time (bar ≤ 1.5)",
        "",
        "| store | Feast materialize | bulk path | raw write floor | bulk / floor | "
        "bulk peak RSS growth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['store']} | {rate(r.get('feast_s'))} | {rate(r['bulk_s'])} | "
            f"{rate(r['floor_s'])} | {r['bulk_s'] / r['floor_s']:.2f}× | {r['bulk_mb']:.0f} MB |"
        )
    lines.append("")
    print("\n".join(lines))
    if not args.no_record:
        header = "" if RESULTS.exists() else "# basketcast benchmark results\n\n"
        with RESULTS.open("a") as fh:
            fh.write(header + "\n".join(lines) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
