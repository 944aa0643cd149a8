"""Bounded load test of `basketcast serve` on loopback: latency percentiles and error rate.

    .venv/bin/python bench/serving_load.py                          # 20k users, 3000 requests
    .venv/bin/python bench/serving_load.py --requests 500 --concurrency 4 --no-record

Setup as bench/serving.py (N users x 20 Float64 features in a private Feast project on
SQLite, materialized with the bulk path), served by basketcast's app under uvicorn in a child
process bound to 127.0.0.1 with an API key. `--concurrency` client threads, each with its own
keep-alive connection, send `--requests` requests in all (or stop at `--max-seconds`), mixed:

- 70 %  POST /features, 10 random known ids        (expect 200)
- 10 %  POST /features, 100 random ids, some unknown (expect 200)
- 10 %  a malformed body, mistyped ids or a missing API key, in turn (expect 400/401/422)
- 10 %  a batch over --max-batch ids, or a body over --max-body-bytes (expect 413)

Recorded: p50/p99 latency of the 200s and of the rejections, throughput, and the error rate:
responses whose status is not the expected one, plus transport errors (must be 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from feature_store import RESULTS, SNAPSHOT, bench_store, write_export
from serving import free_port

from ml_jobs.config import Paths, quiet_environment
from ml_jobs.serving import bulk_write

API_KEY = "bench-serving-load-api-key"
MAX_BATCH = 1000
MAX_BODY = 64 * 1024


@dataclass
class Tally:
    ok_ms: list[float] = field(default_factory=list)
    rejected_ms: list[float] = field(default_factory=list)
    wrong_status: int = 0
    transport_errors: int = 0
    examples: list[str] = field(default_factory=list)


def child(folder: Path, project: str, port: int) -> None:
    """Serve the bench project (run in a child process)."""
    import uvicorn

    from ml_jobs.serving.app import create_app
    from ml_jobs.serving.reader import OnlineReader
    from ml_jobs.serving.schemas import ServeConfig

    store, _ = bench_store(folder, "sqlite", project=project)
    config = ServeConfig(
        Paths(folder), port=port, api_key=API_KEY, max_batch=MAX_BATCH, max_body_bytes=MAX_BODY
    )
    app = create_app(config, reader=OnlineReader(store))
    uvicorn.run(app, host=config.host, port=port, log_level="warning")


def requests_plan(n: int, users: int, seed: int) -> list[tuple[dict, object, int]]:
    """(headers, body, expected status) per request, in a fixed random order."""
    rng = np.random.default_rng(seed)
    auth = {"x-api-key": API_KEY}
    malformed = [
        ({**auth, "content-type": "application/json"}, b"{not json", 422),
        (auth, {"entity": "user", "ids": ["1", 2]}, 422),
        ({}, {"entity": "user", "ids": [1]}, 401),
        ({**auth, "content-type": "application/json"}, b"[" * 5000 + b"]" * 5000, 400),
    ]
    oversize = [
        (auth, {"entity": "user", "ids": list(range(1, MAX_BATCH + 2))}, 413),
        (auth, {"entity": "user", "ids": [1], "pad": "x" * MAX_BODY}, 413),
    ]
    plan = []
    for i, kind in enumerate(rng.choice(4, size=n, p=[0.7, 0.1, 0.1, 0.1])):
        if kind == 0:
            ids = rng.integers(1, users + 1, 10).tolist()
            plan.append((auth, {"entity": "user", "ids": ids}, 200))
        elif kind == 1:
            ids = rng.integers(1, int(users * 1.2) + 1, 100).tolist()
            plan.append((auth, {"entity": "user", "ids": ids}, 200))
        elif kind == 2:
            plan.append(malformed[i % len(malformed)])
        else:
            plan.append(oversize[i % len(oversize)])
    return plan


def fire(port: int, plan: list, concurrency: int, max_seconds: float) -> tuple[Tally, float]:
    import httpx

    tally = Tally()
    lock = threading.Lock()
    cursor = iter(range(len(plan)))
    stop_at = time.perf_counter() + max_seconds

    def worker() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while time.perf_counter() < stop_at:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                headers, body, expected = plan[i]
                started = time.perf_counter()
                try:
                    if isinstance(body, bytes):
                        response = client.post("/features", content=body, headers=headers)
                    else:
                        response = client.post("/features", json=body, headers=headers)
                    status = response.status_code
                    detail_ok = status == 200 or bool(response.json().get("detail"))
                except httpx.HTTPError as error:
                    with lock:
                        tally.transport_errors += 1
                        tally.examples.append(f"{type(error).__name__}: {error}")
                    continue
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    if status != expected or not detail_ok:
                        tally.wrong_status += 1
                        tally.examples.append(f"expected {expected}, got {status}")
                    (tally.ok_ms if status == 200 else tally.rejected_ms).append(ms)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - started


def wait_until_up(port: int, server: subprocess.Popen) -> None:
    import httpx

    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError("the serving app exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the serving app did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sending after")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_environment()
    if args.child:
        child(args.folder, args.project, args.port)
        return

    with tempfile.TemporaryDirectory(prefix="basketcast-bench-load-") as tmp:
        folder = Path(tmp)
        write_export(folder / "users.parquet", args.users)
        store, view = bench_store(folder, "sqlite")
        window = (SNAPSHOT - timedelta(days=1), SNAPSHOT + timedelta(days=1))
        assert bulk_write.materialize_view(store, view, *window) == args.users
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                f"--folder={folder}",
                f"--project={store.project}",
                f"--port={port}",
            ]
        )
        try:
            wait_until_up(port, server)
            plan = requests_plan(args.requests, args.users, seed=5)
            fire(port, plan[:100], args.concurrency, 30)  # warm-up
            tally, seconds = fire(port, plan, args.concurrency, args.max_seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)

    sent = len(tally.ok_ms) + len(tally.rejected_ms) + tally.transport_errors
    errors = tally.wrong_status + tally.transport_errors
    ok50, ok99 = np.percentile(tally.ok_ms, [50, 99]) if tally.ok_ms else (np.nan, np.nan)
    bad50, bad99 = (
        np.percentile(tally.rejected_ms, [50, 99]) if tally.rejected_ms else (np.nan, np.nan)
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    machine += f", load average {os.getloadavg()[0]:.1f} at the end"
    lines = [
        f"### Serving under load — {args.users:,} users × 20 Float64 features, SQLite",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · bench/serving_load.py · "
        f"{args.concurrency} keep-alive clients on 127.0.0.1, API key on, server and clients "
        "on the same cores · mix: 70 % batches of 10 known ids, 10 % batches of 100 (some "
        "unknown), 10 % malformed / mistyped / no key, 10 % oversize (ids or bytes)",
        "",
        "| requests | seconds | req/s | 200 p50 ms | 200 p99 ms | 4xx p50 ms | 4xx p99 ms "
        "| wrong status | transport errors | error rate |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {sent} | {seconds:.1f} | {sent / seconds:.0f} | {ok50:.2f} | {ok99:.2f} | "
        f"{bad50:.2f} | {bad99:.2f} | {tally.wrong_status} | {tally.transport_errors} | "
        f"{errors / max(sent, 1):.2%} |",
        "",
    ]
    print("\n".join(lines))
    for example in tally.examples[:5]:
        print("  e.g.", example)
    if not args.no_record:
        with RESULTS.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
