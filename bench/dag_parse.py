"""How long each DAG file takes to import in a fresh interpreter (the scheduler's parse cost).

    .venv/bin/python bench/dag_parse.py [--repeat 5] [--no-record]

Target: under 2 s per file. Reported per DAG file: the median import time of the module once
airflow is loaded (what a running DAG processor pays) and of `import airflow.sdk` itself (the
floor every fresh process pays).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ml_jobs.config import DAGS_DIR

RESULTS = Path(__file__).with_name("RESULTS.md")


def import_seconds(module: str) -> tuple[float, float]:
    """(seconds to import airflow.sdk, seconds to import the DAG module after it)."""
    code = (
        f"import sys, time; sys.path.insert(0, {str(DAGS_DIR)!r}); t0 = time.perf_counter(); "
        f"import airflow.sdk; t1 = time.perf_counter(); import {module}; "
        "print(t1 - t0, time.perf_counter() - t1)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sdk, dag = out.stdout.strip().splitlines()[-1].split()
    return float(sdk), float(dag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    modules = sorted(p.stem for p in DAGS_DIR.glob("basketcast_*.py"))
    timings = {m: [import_seconds(m) for _ in range(args.repeat)] for m in modules}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "### DAG file parse time (fresh interpreter)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · median of {args.repeat} runs · "
        "target: a DAG file imports in under 2 s",
        "",
        "| file | DAG module s (airflow loaded) | airflow.sdk import s (floor) | total s |",
        "|---|---:|---:|---:|",
    ]
    for module, runs in timings.items():
        sdk = statistics.median(r[0] for r in runs)
        dag = statistics.median(r[1] for r in runs)
        lines.append(f"| {module}.py | {dag:.2f} | {sdk:.2f} | {sdk + dag:.2f} |")
    lines.append("")
    print("\n".join(lines))
    if not args.no_record:
        with RESULTS.open("a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
