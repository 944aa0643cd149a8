"""Time every pipeline step on a synthetic shop and record the numbers in bench/RESULTS.md.

    .venv/bin/python bench/pipeline.py                      # demo scale, 3 repeats
    .venv/bin/python bench/pipeline.py --users 200 --items 20 --days 120 --repeat 1 --no-record

Each step runs in this process through the same `ml_jobs.pipeline` functions the daily DAG calls:
a fresh home, so `predict` first trains the fast champions (bootstrap); the last step is what a
later daily run pays for prediction. Weekly training is timed in bench/demand_models.py and
bench/user_models.py.
Reported per step: median wall time over the repeats, peak resident memory of the process so far,
and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ml_jobs import pipeline
from ml_jobs.config import Paths, quiet_environment

RESULTS = Path(__file__).with_name("RESULTS.md")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run_once(paths: Paths, sizes: dict[str, int]) -> dict[str, float]:
    steps: dict[str, Callable[[], object]] = {
        "generate": lambda: pipeline.generate(paths, **sizes),
        "dbt build (warehouse)": lambda: pipeline.build_warehouse(paths),
        "quality gate": lambda: pipeline.quality_gate(paths),
        "feast apply + materialize": lambda: pipeline.publish_features(paths),
        "predict (bootstraps fast champions)": lambda: pipeline.predict_champions(paths),
        "dbt build (consumers)": lambda: pipeline.build_consumers(paths),
        "predict again (champions only)": lambda: pipeline.predict_champions(paths),
    }
    return {name: timed(step) for name, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=150)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    quiet_environment()
    sizes = {"users": args.users, "items": args.items, "days": args.days}

    runs: list[dict[str, float]] = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="basketcast-bench-") as folder:
            os.environ["BASKETCAST_HOME"] = folder
            runs.append(run_once(Paths(Path(folder)), sizes))
        print(f"run {i + 1}/{args.repeat}: total {sum(runs[-1].values()):.1f} s")

    medians = {step: statistics.median(r[step] for r in runs) for step in runs[0]}
    total = statistics.median(sum(r.values()) for r in runs)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"### Pipeline steps — {args.users} users × {args.items} items × {args.days} days",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · median of {args.repeat} runs · "
        f"peak RSS {peak_rss_mb():.0f} MB",
        "",
        "| step | median s |",
        "|---|---:|",
        *[f"| {step} | {seconds:.1f} |" for step, seconds in medians.items()],
        f"| **total** | **{total:.1f}** |",
        "",
    ]
    print("\n".join(lines))
    if not args.no_record:
        header = "" if RESULTS.exists() else "# basketcast benchmark results\n\n"
        with RESULTS.open("a") as fh:
            fh.write(header + "\n".join(lines) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
