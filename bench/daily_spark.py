"""Time every step of basketcast_daily on Spark local and on DuckDB; record in bench/RESULTS.md.

    .venv/bin/python bench/daily_spark.py                       # ~60k and ~1M events
    .venv/bin/python bench/daily_spark.py --scale 60k --no-record
    .venv/bin/python bench/daily_spark.py --scale tiny --out F  # a quick check, never recorded

One synthetic shop per scale; each engine gets a home of its own holding only a copy of the raw
Parquet files, so the Spark run has no DuckDB warehouse to fall back on. In one child process
per engine (Spark keeps one session, and locally one Derby metastore, per process, as an
Airflow worker running the steps would), the steps of `basketcast_daily` and the consumer
build run in order through the functions the DAG tasks call (`ml_jobs.pipeline`), each timed:

    dbt_build_warehouse → quality_gate → feast_materialize → predict_champions (bootstrap:
    trains the fast models) → predict_champions (scoring only, as on every later day) →
    dbt_build_consumers

On Spark the warehouse build is a full refresh, as the DAG runs it there. Peak resident memory
is that of the whole process tree (the Spark driver JVM is a child of Python). Spark local runs
on the same cores as everything else here: the point is that the daily run works on Spark end
to end, and what each step costs there, not a race.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dbt_spark import SCALES, child, machine, run  # noqa: E402

from ml_jobs.config import Paths  # noqa: E402
from ml_jobs.generate import ShopConfig, generate_shop  # noqa: E402

ENGINES = ("duckdb", "spark")
STEPS = (
    "dbt_build_warehouse",
    "quality_gate",
    "feast_materialize",
    "predict_champions (bootstrap)",
    "predict_champions (scoring)",
    "dbt_build_consumers",
)
DAILY = """
import json, sys, time
from pathlib import Path
from ml_jobs import pipeline
from ml_jobs.config import Paths

paths, target = Paths(Path(sys.argv[1])), sys.argv[2]
calls = [
    lambda: pipeline.build_warehouse(paths, target=target, full_refresh=target == "spark"),
    lambda: pipeline.quality_gate(paths, target=target),
    lambda: pipeline.publish_features(paths, target=target),
    lambda: pipeline.predict_champions(paths, target=target),
    lambda: pipeline.predict_champions(paths, target=target),
    lambda: pipeline.build_consumers(paths, target=target),
]
times = []
for call in calls:
    started = time.perf_counter()
    call()
    times.append(time.perf_counter() - started)
    print(f"step {len(times)} {times[-1]:.1f} s", file=sys.stderr, flush=True)
print("steps " + json.dumps(times), flush=True)
"""


def bench_scale(name: str, folder: Path) -> dict[str, object]:
    """The daily steps on both engines for one shop of scale `name`."""
    users, items, days = SCALES[name]
    source = Paths(folder / name / "generated")
    rows = generate_shop(ShopConfig(users=users, items=items, days=days), source)
    runs = {}
    for engine in ENGINES:
        paths = Paths(folder / name / engine)
        shutil.copytree(source.raw, paths.raw)
        env = {
            **os.environ,
            "BASKETCAST_HOME": str(paths.home),
            "DBT_TARGET_PATH": str(folder / name / f"target-{engine}"),
            "DBT_LOG_PATH": str(folder / name / f"logs-{engine}"),
        }
        env.pop("BASKETCAST_DBT_TARGET", None)
        measure, output = child([sys.executable, "-c", DAILY, str(paths.home), engine], env)
        line = next(x for x in output.splitlines() if x.startswith("steps "))
        steps = dict(zip(STEPS, json.loads(line.removeprefix("steps ")), strict=True))
        runs[engine] = {
            "steps": steps,
            "wall_s": measure.wall_s,
            "tree_peak_mb": measure.tree_peak_mb,
            "duckdb_file": paths.warehouse.exists(),
        }
        print(f"{name} {engine}: {measure.wall_s:.1f} s {steps}", flush=True)
    return {
        "scale": name,
        "shop": f"{users} users × {items} items × {days} days",
        "events": rows["events"],
        "runs": runs,
    }


def report(results: list[dict], load_start: float) -> str:
    lines = [
        "### basketcast_daily on Spark local vs DuckDB (bench/daily_spark.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine(load_start)} · every step of the "
        "daily DAG plus the consumer build, in one process per engine, each engine on a home "
        "holding only the raw files · Spark `method: session`, local[*], driver memory "
        f"{os.environ.get('BASKETCAST_SPARK_DRIVER_MEMORY', '2g')}",
        "",
        "| events | engine | " + " | ".join(f"{s} s" for s in STEPS) + " | process wall s "
        "| peak RSS tree MB |",
        "|---:|---|" + "---:|" * (len(STEPS) + 2),
    ]
    for result in results:
        for engine, measured in result["runs"].items():
            steps = " | ".join(f"{measured['steps'][s]:.1f}" for s in STEPS)
            lines.append(
                f"| {result['events']:,} | {engine} | {steps} | {measured['wall_s']:.1f} | "
                f"{measured['tree_peak_mb']:.0f} |"
            )
    lines.append("")
    for result in results:
        duck, spark = result["runs"]["duckdb"], result["runs"]["spark"]
        after = STEPS[1:]
        ratios = ", ".join(
            f"{s} {spark['steps'][s] / duck['steps'][s]:.1f}×" for s in after if duck["steps"][s]
        )
        past = sum(spark["steps"][s] for s in after) / sum(duck["steps"][s] for s in after)
        lines.append(
            f"- {result['events']:,} events ({result['shop']}): the steps past the warehouse "
            f"build take **{past:.1f}×** as long on Spark ({ratios}). The Spark home had "
            f"{'a' if spark['duckdb_file'] else 'no'} warehouse.duckdb at the end: it holds "
            "ml_jobs' runs and predictions only."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run(__doc__, bench_scale, report, "basketcast-daily-spark-")
