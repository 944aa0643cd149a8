"""Peak memory of the user models' per-user item matrices at a large shape (no training).

    .venv/bin/python bench/users_memory.py [--users 100000] [--items 5000] [--per-user 8]

Synthetic events (the tests' generator), then under tracemalloc: the sparse training inputs
(history, targets, purchased-before) and one ranking baseline scored a batch of users at a
time down to each user's top 12. Prints the peak of each next to what the former dense
(users x items) layout needed.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--per-user", type=int, default=8)
    args = parser.parse_args()
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
