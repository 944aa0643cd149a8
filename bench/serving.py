"""Online fetch latency: raw store reads, the lean reader, Feast's SDK, and HTTP /features.

    .venv/bin/python bench/serving.py                       # 100k users, SQLite and Redis
    .venv/bin/python bench/serving.py --users 20000 --requests 300 --no-record

Setup as bench/feature_store.py (N users x 20 Float64 features, a private Feast project),
materialized with the bulk path. Per store, for batches of 1 and 100 random known ids, the
p50 and p99 of:
- raw floor: one ``SELECT ... WHERE entity_key IN`` (SQLite) or one pipelined ``HMGET`` round
  (Redis) with the keys built beforehand, no decoding;
- lean reader: ``ml_jobs.serving.reader.OnlineReader.read`` (what ``basketcast serve`` uses);
- Feast SDK: ``FeatureStore.get_online_features(...).to_dict()``;
- HTTP: ``POST /features`` to ``basketcast serve``'s app under uvicorn in a child process,
  over loopback with a keep-alive httpx client.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from feature_store import FEATURES, RESULTS, SNAPSHOT, bench_store, clear_online, write_export

from ml_jobs.config import Paths, quiet_environment
from ml_jobs.serving import bulk_write
from ml_jobs.serving.layout import entity_keys, view_layout
from ml_jobs.serving.reader import OnlineReader

BATCHES = (1, 100)


def percentiles(call: Callable[[list[int]], Any], batches: list[list[int]]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``call`` over ``batches`` (after a short warm-up)."""
    for ids in batches[:20]:
        call(ids)
    times = []
    for ids in batches:
        started = time.perf_counter()
        call(ids)
        times.append(time.perf_counter() - started)
    p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
    return float(p50), float(p99)


def raw_reader(store: Any, view: Any) -> Callable[[list[int]], Any]:
    layout = view_layout(store.project, view)
    if store.config.online_store.type == "sqlite":
        con = sqlite3.connect(store.config.online_store.path)

        def sqlite_read(ids: list[int]) -> Any:
            keys = entity_keys(layout.join_key, np.asarray(ids, "int64"))
            query = (
                f'SELECT entity_key, feature_name, value FROM "{layout.sqlite_table}" '
                f"WHERE entity_key IN ({','.join('?' * len(keys))})"
            )
            return con.execute(query, keys).fetchall()

        return sqlite_read
    from feature_store import redis_client

    client = redis_client(store)
    fields = [*layout.redis_fields(), layout.redis_ts_field]
    project = store.project.encode()

    def redis_read(ids: list[int]) -> Any:
        keys = entity_keys(layout.join_key, np.asarray(ids, "int64"))
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key + project, fields)
            return pipe.execute()

    return redis_read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child(folder: Path, online: str, project: str, port: int) -> None:
    """Serve the bench project's features with basketcast's app (run in a child process)."""
    import uvicorn

    from ml_jobs.serving.app import create_app
    from ml_jobs.serving.schemas import ServeConfig

    store, _ = bench_store(folder, online, project=project)
    config = ServeConfig(Paths(folder), online=online, port=port)
    app = create_app(config, reader=OnlineReader(store))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def http_reader(folder: Path, online: str, project: str) -> tuple[Callable, subprocess.Popen]:
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            f"--folder={folder}",
            f"--online={online}",
            f"--project={project}",
            f"--port={port}",
        ]
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    for _ in range(600):
        try:
            if client.get("/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        server.kill()
        raise RuntimeError("the serving app did not come up")

    def fetch(ids: list[int]) -> Any:
        response = client.post("/features", json={"entity": "user", "ids": ids})
        response.raise_for_status()
        return response.json()

    return fetch, server


def bench(users: int, online: str, requests: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    out = []
    with tempfile.TemporaryDirectory(prefix="basketcast-bench-serve-") as tmp:
        folder = Path(tmp)
        write_export(folder / "users.parquet", users)
        store, view = bench_store(folder, online)
        start, end = SNAPSHOT - timedelta(days=1), SNAPSHOT + timedelta(days=1)
        server = None
        try:
            assert bulk_write.materialize_view(store, view, start, end) == users
            reader = OnlineReader(store)
            feature_set = reader.feature_set("user")
            refs = [f"{view.name}:{f.name}" for f in view.features]
            http, server = http_reader(folder, online, store.project)
            paths: dict[str, Callable[[list[int]], Any]] = {
                "raw floor": raw_reader(store, view),
                "lean reader": lambda ids: reader.read(feature_set, ids),
                "Feast SDK": lambda ids: store.get_online_features(
                    features=refs, entity_rows=[{"user_id": i} for i in ids]
                ).to_dict(),
                "HTTP /features": http,
            }
            for name, call in paths.items():
                row: dict[str, Any] = {"store": online, "path": name}
                for size in BATCHES:
                    count = requests if size == 1 else max(requests // 4, 50)
                    batches = [rng.integers(1, users + 1, size).tolist() for _ in range(count)]
                    row[size] = percentiles(call, batches)
                print(row, flush=True)
                out.append(row)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            if online == "redis":
                clear_online(store, view)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--requests", type=int, default=2000, help="timed batches of 1")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--online", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_environment()
    if args.child:
        child(args.folder, args.online, args.project, args.port)
        return

    rows = [
        row for online in args.stores.split(",") for row in bench(args.users, online, args.requests)
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    machine += f", load average {os.getloadavg()[0]:.1f} at the end"
    lines = [
        f"### Online fetch — {args.users:,} users × {FEATURES} Float64 features",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · {args.requests} batches of 1, "
        f"{max(args.requests // 4, 50)} of 100 · "
        "ms; bars: SDK on Redis p99 ≤ 1 / ≤ 10, HTTP p99 ≤ 5 / ≤ 20",
        "",
        "| store | path | batch 1 p50 | batch 1 p99 | batch 100 p50 | batch 100 p99 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['path']} | {r[1][0]:.2f} | {r[1][1]:.2f} | "
            f"{r[100][0]:.2f} | {r[100][1]:.2f} |"
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
