"""Time the same dbt project on Spark (local session) and on DuckDB; record in bench/RESULTS.md.

    .venv/bin/python bench/dbt_spark.py                       # ~60k and ~1M events
    .venv/bin/python bench/dbt_spark.py --scale 60k --no-record
    .venv/bin/python bench/dbt_spark.py --scale tiny --out F  # a quick check, never recorded

For each synthetic shop, on one set of raw Parquet files, each in a child process of its own:
- `dbt run --full-refresh --exclude tag:consumers` with `--target duckdb` and `--target spark`
  (dbt-spark `method: session`: the Spark driver JVM is a child of the dbt process). Consumer
  marts are left out as in tests/test_dbt_spark.py (they read predictions written back later);
- a bare Spark session (the profile's time zone and driver memory) started, one query, stopped:
  Spark's start-up cost on its own, which the Spark build pays once.
Per run: wall time; dbt's start-up before the run (interpreter, imports, project parse: wall
minus the run's elapsed time in run_results.json); the run itself (on Spark the session opens
inside it, before the first model); the on-run-start hook (Spark registers the raw tables
there); the sum of the models' own times and the threads they ran on (the profile's: DuckDB
runs two models at a time, Spark one, so the sum can exceed the run); peak resident memory of
the whole process tree (the sum over the process and its descendants, sampled every 0.2 s) and
of its largest single process (ru_maxrss). Spark local runs on the same cores as everything
else here: the point is that the same project builds on both, not a race.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from ml_jobs.config import DBT_PROJECT_DIR, Paths, quiet_environment
from ml_jobs.generate import ShopConfig, generate_shop

RESULTS = Path(__file__).with_name("RESULTS.md")
DBT = str(Path(sys.executable).with_name("dbt"))
SELECTION = ["--exclude", "tag:consumers"]
ENGINES = ("duckdb", "spark")
# users × items × days; events grow with items × days (about 16 per item-day).
SCALES: dict[str, tuple[int, int, int]] = {
    "tiny": (40, 8, 20),
    "60k": (400, 30, 240),
    "1M": (4_000, 300, 240),
}
# Spark's start-up on its own: a session with the profile's settings, one query, stop.
SESSION = """
import sys, time
from pyspark.sql import SparkSession
started = time.perf_counter()
home = sys.argv[1]
spark = (SparkSession.builder.master("local[*]").appName("basketcast-bench")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.warehouse.dir", home + "/session-warehouse")
    .config("spark.driver.memory", sys.argv[2])
    .getOrCreate())
spark.sql("select 1").collect()
spark.stop()
print("startup_s", time.perf_counter() - started, flush=True)
"""


@dataclass
class Measure:
    """One child process: its wall time and memory; dbt's own timings where it was dbt."""

    wall_s: float
    tree_peak_mb: float
    largest_process_mb: float
    processes: int
    run_s: float = 0.0
    hooks_s: float = 0.0
    model_sum_s: float = 0.0
    models: int = 0
    threads: int = 0

    @property
    def startup_s(self) -> float:
        return self.wall_s - self.run_s


def child(command: list[str], env: dict[str, str]) -> tuple[Measure, str]:
    """Run a command to its end, sampling the RSS of its process tree; fails loudly."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(process.pid)
        tree_peak, largest, seen = 0, 0, {process.pid}
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            total = 0
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                members = []
            for member in members:
                try:
                    rss = member.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                largest = max(largest, rss)
                seen.add(member.pid)
            tree_peak = max(tree_peak, total)
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{output[-4000:]}")
    # ru_maxrss: the largest of the process and its waited-for descendants, between samples too.
    largest_mb = max(largest / 2**20, usage.ru_maxrss / 1024)
    return Measure(elapsed, tree_peak / 2**20, largest_mb, len(seen)), output


def dbt_run(engine: str, env: dict[str, str], project: Path, target: Path) -> Measure:
    """`dbt run --full-refresh` of the warehouse on one engine, in a child process."""
    command = [DBT, "run", *SELECTION, "--full-refresh", "--target", engine]
    command += ["--project-dir", str(project), "--profiles-dir", str(project)]
    measure, _ = child(command, {**env, "DBT_TARGET_PATH": str(target)})
    results = json.loads((target / "run_results.json").read_text())
    nodes = results["results"]
    measure.run_s = results["elapsed_time"]
    measure.hooks_s = sum(r["execution_time"] for r in nodes if r["unique_id"].startswith("op"))
    models = [r for r in nodes if r["unique_id"].startswith("model.")]
    measure.model_sum_s = sum(r["execution_time"] for r in models)
    measure.models = len(models)
    measure.threads = len({r["thread_id"] for r in models})
    return measure


def spark_session(env: dict[str, str], home: Path) -> tuple[Measure, float]:
    """A bare Spark session's start and stop in a child process; (measure, start-up s)."""
    memory = env.get("BASKETCAST_SPARK_DRIVER_MEMORY", "2g")
    measure, output = child([sys.executable, "-c", SESSION, str(home), memory], env)
    startup = next(line for line in output.splitlines() if line.startswith("startup_s "))
    return measure, float(startup.split()[1])


def bench_scale(name: str, folder: Path) -> dict[str, object]:
    """Both engines on one shop of scale `name`; every measure as plain values."""
    users, items, days = SCALES[name]
    paths = Paths(folder / name / "home")
    rows = generate_shop(ShopConfig(users=users, items=items, days=days), paths)
    paths.exports.mkdir(parents=True, exist_ok=True)
    # A frozen copy of the project: edits to the working tree do not reach the measurement.
    project = folder / name / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    env = {
        **os.environ,
        "BASKETCAST_HOME": str(paths.home),
        "BASKETCAST_WAREHOUSE": str(paths.warehouse),
        "DBT_LOG_PATH": str(folder / name / "logs"),
    }
    runs = {}
    for engine in ENGINES:
        runs[engine] = dbt_run(engine, env, project, folder / name / f"target-{engine}")
        print(f"{name} {engine}: {runs[engine].wall_s:.1f} s", flush=True)
    session, startup = spark_session(env, folder / name)
    return {
        "scale": name,
        "shop": f"{users} users × {items} items × {days} days",
        "events": rows["events"],
        "runs": {engine: asdict(m) | {"startup_s": m.startup_s} for engine, m in runs.items()},
        "session": asdict(session) | {"startup_s": startup},
    }


def machine(load_start: float) -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (shared with other work while measured), "
        f"{memory:.1f} GB, Python {platform.python_version()}, load average {load_start:.1f} at "
        f"the start, {os.getloadavg()[0]:.1f} at the end"
    )


def report(results: list[dict], load_start: float) -> str:
    lines = [
        "### dbt on Spark local vs DuckDB (bench/dbt_spark.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine(load_start)} · "
        "`dbt run --full-refresh --exclude tag:consumers`, one run per engine and scale, each "
        "in its own process · Spark `method: session`, local[*], driver memory "
        f"{os.environ.get('BASKETCAST_SPARK_DRIVER_MEMORY', '2g')}",
        "",
        "| events | engine | wall s | dbt start-up + parse s | run s | on-run-start s "
        "| Σ model s (models × threads) | peak RSS tree MB | largest process MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for engine, run in result["runs"].items():
            lines.append(
                f"| {result['events']:,} | {engine} | {run['wall_s']:.1f} | "
                f"{run['startup_s']:.1f} | {run['run_s']:.1f} | {run['hooks_s']:.1f} | "
                f"{run['model_sum_s']:.1f} ({run['models']} × {run['threads']}) | "
                f"{run['tree_peak_mb']:.0f} | {run['largest_process_mb']:.0f} |"
            )
    lines.append("")
    for result in results:
        duck, spark = result["runs"]["duckdb"], result["runs"]["spark"]
        session = result["session"]
        lines.append(
            f"- {result['events']:,} events ({result['shop']}): Spark / DuckDB wall "
            f"**{spark['wall_s'] / duck['wall_s']:.1f}×**, run after start-up and parse "
            f"{spark['run_s'] / duck['run_s']:.1f}×; a bare Spark session "
            f"starts in {session['startup_s']:.1f} s ({session['wall_s']:.1f} s with its "
            f"process, peak {session['tree_peak_mb']:.0f} MB)."
        )
    return "\n".join(lines) + "\n"


def run(
    doc: str,
    bench: Callable[[str, Path], dict[str, object]],
    render: Callable[[list[dict], float], str],
    prefix: str,
) -> None:
    """The command line these Spark benches share: scales, where to record, the runs."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--scale", action="append", choices=list(SCALES), help="repeatable")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--out", type=Path, help="write results.json and the table here")
    args = parser.parse_args()
    scales = args.scale or ["60k", "1M"]
    if "tiny" in scales and not args.out:
        parser.error("--scale tiny is a quick check: give --out DIR, it is never recorded")
    quiet_environment()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        results = [bench(name, Path(folder)) for name in scales]
    text = render(results, load_start)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "RESULTS.md").write_text(text)
    elif not args.no_record:
        with RESULTS.open("a") as recorded:
            recorded.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    run(__doc__, bench_scale, report, "basketcast-dbt-spark-")
