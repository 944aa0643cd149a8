"""Peak memory of the user models' inputs (no training).

    .venv/bin/python bench/users_memory.py [--users 100000] [--items 5000] [--per-user 8]
    .venv/bin/python bench/users_memory.py --home /path/to/built/home [--torch]

Synthetic events (the tests' generator), then under tracemalloc: the sparse training inputs
(history, targets, purchased-before) and one ranking baseline scored a batch of users at a
time down to each user's top 12. Prints the peak of each next to what the former dense
(users x items) layout needed.

With `--home` (a home that dbt built and Feast materialized): the user models' input assembly
(`ml_jobs.users.inputs.load_inputs`, the fast configuration unless `--torch`) stage by stage, with
the process's resident memory sampled every 50 ms: the peak of each stage, and the size of
what it keeps. Run it in a process of its own (RSS never shrinks back to a baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml_jobs.users import baselines, data  # noqa: E402
from ml_jobs.users.ranking import Ranked, batches  # noqa: E402
from tests.test_users_scale import synthetic_events  # noqa: E402

MIB = 2**20


def measure(label: str, dense_bytes: float, work) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label:<34} peak {peak / MIB:8.1f} MiB   dense layout {dense_bytes / MIB:9.0f} MiB"
        f"   {seconds:6.2f} s   {result}"
    )


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _nbytes(value: object) -> int:
    if value is None:
        return 0
    if sp.issparse(value):
        return value.data.nbytes + value.indices.nbytes + value.indptr.nbytes
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return int(np.sum(value.memory_usage(deep=True)))
    if dataclasses.is_dataclass(value):
        return sum(_nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return int(getattr(value, "nbytes", 0))


def assembly(home: Path, torch_inputs: bool) -> None:
    """Peak RSS of each stage of load_inputs on a built home (see the module doc)."""
    from rich.console import Console

    from ml_jobs.config import Paths, quiet_environment
    from ml_jobs.users.backtest import UserModelsConfig
    from ml_jobs.users.inputs import load_inputs

    quiet_environment()
    os.environ["BASKETCAST_HOME"] = str(home)
    paths = Paths(home)
    config = UserModelsConfig(n_cutoffs=1, use_torch=torch_inputs)
    peak = [_rss()]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()

    def stage(label: str, kept: int) -> None:
        print(
            f"{label:<28} {time.perf_counter() - started:7.1f} s   peak RSS "
            f"{peak[0] / MIB:8.0f} MiB   RSS now {_rss() / MIB:8.0f} MiB   "
            f"keeps {kept / MIB:7.0f} MiB",
            flush=True,
        )
        peak[0] = _rss()

    catalog = data.load_catalog(paths)
    events = data.load_events(paths, catalog)
    stage(f"events ({len(events.user)})", _nbytes(events))
    del events
    inputs = load_inputs(paths, config, Console(stderr=True))
    stage(f"load_inputs ({len(inputs.train_all)} rows)", _nbytes(inputs.train_all))
    for field in dataclasses.fields(inputs.train_all):
        size = _nbytes(getattr(inputs.train_all, field.name))
        if size:
            print(f"    {field.name:<16} {size / MIB:8.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--per-user", type=int, default=8)
    parser.add_argument("--home", type=Path, help="a built home: measure the input assembly")
    parser.add_argument("--torch", action="store_true", help="with --home: torch inputs too")
    args = parser.parse_args()
    if args.home is not None:
        assembly(args.home.resolve(), args.torch)
        return
    n, items = args.users, args.items
    events = synthetic_events(n, items, args.per_user)
    users = np.arange(1, n + 1, dtype=np.int64)
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    print(f"{n} users x {items} items, {len(events.user)} events")
    measure(
        "user_item_history (2 x items)",
        n * 2 * items * 4,
        lambda: f"nnz {data.user_item_history(events, users, cutoff, items).nnz}",
    )
    measure(
        "window_targets (items)",
        n * items * 4,
        lambda: f"nnz {data.window_targets(events, users, cutoff, 7, items, 7)[0].nnz}",
    )
    measure(
        "purchased_before",
        n * items,
        lambda: f"nnz {data.purchased_before(events, users, cutoff, items).nnz}",
    )
    for name in ("popularity", "cooccurrence"):

        def rank(name: str = name) -> str:
            scorer = baselines.ranking_scorer(name, events, cutoff, items)
            parts = [Ranked.from_scores(scorer(users[m]), 12) for m in batches(n)]
            return f"ranked {Ranked.concat(parts, 12).items.shape}"

        measure(f"{name} top-12, batched users", n * items * 8, rank)


if __name__ == "__main__":
    main()
