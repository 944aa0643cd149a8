"""One harness for the whole pipeline at scale S (~1M events), M (~20M) or L (~200M).

    .venv/bin/python bench/scale.py --scale S               # record in bench/RESULTS.md
    .venv/bin/python bench/scale.py --scale M --repeat 1
    .venv/bin/python bench/scale.py --scale tiny --no-record  # what the test suite runs
    .venv/bin/python bench/scale.py --plot                  # redraw bench/scale.png only
    .venv/bin/python bench/scale.py --scale L --steps generate --home /data/shop-l   # one step

Every step runs in a child process of its own, through the same `ml_jobs.pipeline` functions the
DAGs call, on one fresh basketcast home: generate → dbt build → materialize → train → predict +
write-back → consumers. Per step: wall time, rows and rows/s, the child's peak resident memory
(ru_maxrss), and its floor where one exists, run the same way on the same data:
- dbt build: one hand-written DuckDB query per output straight from the raw Parquet
  (bench/dbt_build.py's FLOOR_SQL);
- materialize: the same newest rows upserted into the online store with encoding done
  beforehand (bench/feature_store.py's run_floor), store writes alone;
- train: the torch model's training loop over the same batches with no model (data floor).
The train step fits the demand models named by --train-models (XGBoost and torch by default, each
with its rolling-origin backtest) and the user models in their fast form (--user-models full runs
the weekly job with its torch sequence model; bench/user_models.py times that one in detail).
Steps that leave state behind them (dbt, materialize, train) run once; the others are repeated
`--repeat` times and the median is kept. Every record is appended to bench/scale_runs.jsonl;
the growth table and bench/scale.png are drawn from the newest record per scale and step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from scale_report import BENCH, STEPS, Outputs, plot, record

# users × items × days of the synthetic shop. Events grow with items × days (about 16 per
# item-day at the default demand): S ~1M, M ~20M, L ~200M events.
SCALES: dict[str, tuple[int, int, int]] = {
    "tiny": (300, 30, 90),
    "S": (4_000, 300, 240),
    "M": (120_000, 5_000, 240),
    "L": (1_200_000, 50_000, 240),
}
# DuckDB's memory limit per scale (dbt, the floor and ml_jobs' connections): past it DuckDB
# spills to disk, with insertion order not preserved, so a build fits 24 GB beside training.
DUCKDB_MEMORY = {"tiny": "", "S": "", "M": "10GB", "L": "10GB"}
REPEATABLE = {"generate", "predict", "consumers"}
FLOORS = {"dbt build": "floor dbt", "materialize": "floor materialize", "train": "floor train"}


@dataclass
class StepResult:
    step: str
    seconds: float
    rows: int
    peak_rss_mb: float
    repeats: int = 1
    floor_seconds: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Plan:
    """What one harness run builds and trains; the child processes receive it as JSON."""

    scale: str
    home: Path
    models: str = "xgboost_quantile,torch_quantile"  # demand models the train step fits
    user_models: str = "fast"  # full | fast | skip: the user models the train step fits
    duckdb_memory: str = ""  # DuckDB memory_limit for every step ("" = DuckDB's default)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return SCALES[self.scale]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "home": str(self.home)})

    @classmethod
    def from_json(cls, text: str) -> Plan:
        values = json.loads(text)
        return cls(**{**values, "home": Path(values["home"])})


# ---------------------------------------------------------------- child side: one step each


def _scalar(sql: str, database: Path | None = None) -> Any:
    """One value from DuckDB: the warehouse read-only when `database` is given, else in memory."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True) if database else duckdb.connect()
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _paths(home: Path):  # noqa: ANN202 - Paths, imported lazily
    from ml_jobs.config import Paths

    return Paths(home)


def _events(paths) -> int:  # noqa: ANN001 - Paths, imported lazily
    return int(_scalar(f"select count(*) from read_parquet('{paths.raw}/events/*.parquet')"))


def run_step(step: str, plan: Plan) -> dict:
    """Do one step in this (child) process; return its rows and any extra numbers."""
    from ml_jobs import pipeline
    from ml_jobs.config import Paths, quiet_environment

    quiet_environment()
    home = plan.home
    os.environ["BASKETCAST_HOME"] = str(home)
    if plan.duckdb_memory:
        os.environ["BASKETCAST_DUCKDB_MEMORY_LIMIT"] = plan.duckdb_memory
        os.environ["BASKETCAST_DUCKDB_PRESERVE_ORDER"] = "false"
    paths = Paths(home)
    users, items, days = plan.sizes
    if step == "generate":
        counts = pipeline.generate(paths, users=users, items=items, days=days)
        return {"rows": counts["events"]}
    if step == "dbt build":
        pipeline.build_warehouse(paths)
        return {"rows": _events(paths)}
    if step == "floor dbt":
        import duckdb
        from dbt_build import FLOOR_SQL

        from ml_jobs.warehouse import duckdb_settings

        con = duckdb.connect(str(home / "floor.duckdb"), config=duckdb_settings())
        con.execute(FLOOR_SQL.format(raw=paths.raw))
        con.close()
        return {"rows": _events(paths)}
    if step == "materialize":
        return {"rows": pipeline.publish_features(paths)}
    if step == "floor materialize":
        return floor_materialize(paths)
    if step == "train":
        summary = pipeline.train_demand(paths, models=tuple(plan.models.split(",")))
        failed = [r["model"] for r in summary["runs"] if r["status"] != "succeeded"]  # type: ignore[index]
        if failed:
            raise RuntimeError(f"training failed for {failed}")
        extra = torch_training(paths, summary)
        if plan.user_models != "skip":
            started = time.perf_counter()
            pipeline.train_users(paths, fast=plan.user_models == "fast")
            extra["user models s"] = time.perf_counter() - started
        return {"rows": int(summary["n_items"]) * days, "extra": extra}
    if step == "floor train":
        return floor_train(paths)
    if step == "predict":
        pipeline.predict_champions(paths)
        sql = "select count(*) from predictions.item_demand_forecast"
        return {"rows": int(_scalar(sql, paths.warehouse))}
    if step == "consumers":
        pipeline.build_consumers(paths)
        sql = "select count(*) from consumers.inventory_replenishment_plan"
        return {"rows": int(_scalar(sql, paths.warehouse))}
    raise SystemExit(f"unknown step {step!r}; choose from {STEPS} or the floors {FLOORS}")


def torch_training(paths, summary: dict) -> dict[str, float]:  # noqa: ANN001
    """Samples/s of the torch run's final fit, as saved beside its weights."""
    run_ids = [r["run_id"] for r in summary["runs"] if r["model"].startswith("torch")]
    if not run_ids:
        return {}
    sql = f"select artifact_uri from ml.model_runs where run_id = '{run_ids[0]}'"
    uri = _scalar(sql, paths.warehouse)
    training = json.loads((Path(uri) / "model_config.json").read_text()).get("training") or {}
    return {"torch samples/s": float(training.get("samples_per_s", 0.0))}


def floor_materialize(paths) -> dict:  # noqa: ANN001
    """Store writes alone for the rows `materialize` loaded (encoding done beforehand)."""
    from datetime import datetime as dt

    from feature_store import run_floor

    from ml_jobs import features, pipeline

    store = features.feature_store(paths)
    start, end = dt(2000, 1, 1, tzinfo=UTC), pipeline.feature_window_end(paths)
    seconds = sum(run_floor(store, view, start, end) for view in store.list_feature_views())
    return {"rows": 0, "timed_seconds": seconds}


def floor_train(paths) -> dict:  # noqa: ANN001
    """The torch trainer's loop over the same samples and batches with no model, on the CPU:
    every batch is drawn from the panel tensors exactly as in training, nothing else runs."""
    import torch

    from ml_jobs.demand.data import load_demand_data, to_panel
    from ml_jobs.demand.torch_data import panel_tensors, training_samples
    from ml_jobs.demand.torch_forecaster import TorchQuantileParams, _vocab

    params = TorchQuantileParams()
    train = params.train
    torch.set_num_threads(train.threads)
    panel = to_panel(load_demand_data(paths).history)
    items = _vocab(panel.item_ids)
    vocab = _vocab(panel.category_id[~np.isnan(panel.category_id)].astype(np.int64))
    tensors = panel_tensors(
        panel, params.horizon, None, items, vocab, first_origin=train.min_origin
    )
    rows, origins = training_samples(tensors, train.min_origin, train.origin_stride)
    net = params.net_config(len(items) + 1, len(vocab) + 1)
    started, seen = time.perf_counter(), 0
    for epoch in range(train.epochs):
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(rows), train.batch_size):
            pick = order[start : start + train.batch_size]
            _ = tensors.batch(rows[pick], origins[pick], net.window, net.horizon)
            seen += len(pick)
    return {"rows": seen, "timed_seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- parent side: orchestration


def child(step: str, plan: Plan) -> tuple[float, float, dict]:
    """Run one step in a child process: (wall seconds, peak RSS MB, what the child returned)."""
    command = [sys.executable, __file__, "--child", step, "--plan", plan.to_json()]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"step {step!r} failed (exit {status}):\n{output[-4000:]}")
    marker = [line for line in output.splitlines() if line.startswith("RESULT ")]
    return elapsed, usage.ru_maxrss / 1024, json.loads(marker[-1][len("RESULT ") :])


def measure(step: str, plan: Plan, repeat: int) -> StepResult:
    times, peaks, out = [], [], {}
    for _ in range(repeat if step in REPEATABLE else 1):
        seconds, peak, out = child(step, plan)
        times.append(out.get("timed_seconds", seconds))
        peaks.append(peak)
    result = StepResult(step, statistics.median(times), int(out["rows"]), max(peaks), len(times))
    result.extra = out.get("extra", {})
    if step in FLOORS:
        floor_seconds, _, floor_out = child(FLOORS[step], plan)
        result.floor_seconds = floor_out.get("timed_seconds", floor_seconds)
        if step == "train":  # the floor counts samples: compare samples/s, not seconds
            floor_rate = floor_out["rows"] / result.floor_seconds if result.floor_seconds else 0
            result.extra["floor samples/s"] = floor_rate
            result.floor_seconds = None
    print(
        f"  {step:<12} {result.seconds:8.1f} s  {result.rows:>12,} rows  "
        f"{result.peak_rss_mb:7.0f} MB"
        + (f"  floor {result.floor_seconds:.1f} s" if result.floor_seconds else ""),
        flush=True,
    )
    return result


def machine() -> dict[str, object]:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def run_scale(plan: Plan, repeat: int, steps: tuple[str, ...] = STEPS) -> list[StepResult]:
    users, items, days = plan.sizes
    plan.home.mkdir(parents=True, exist_ok=True)
    print(f"scale {plan.scale}: {users:,} users × {items:,} items × {days} days in {plan.home}")
    return [measure(step, plan, repeat) for step in steps]


def parse_steps(text: str | None) -> tuple[str, ...]:
    """`--steps` as pipeline steps in pipeline order: a later step reads what the earlier ones
    left in the kept home, so a run can be split (a large scale, one step at a time)."""
    if not text:
        return STEPS
    asked = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in asked if s not in STEPS]
    if unknown:
        raise SystemExit(f"unknown step(s) {unknown}: choose from {', '.join(STEPS)}")
    return tuple(s for s in STEPS if s in asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the repeatable steps")
    parser.add_argument("--train-models", default=Plan.models, help="demand models to train")
    parser.add_argument("--user-models", choices=("full", "fast", "skip"), default=Plan.user_models)
    parser.add_argument(
        "--duckdb-memory",
        help="DuckDB memory_limit for every step, e.g. 10GB (default: by scale, none below M)",
    )
    parser.add_argument("--home", type=Path, help="keep the basketcast home here (default: temp)")
    parser.add_argument(
        "--steps",
        help="comma-separated subset of the steps, run in pipeline order on --home "
        "(default: all): 'generate,dbt build'",
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--out", type=Path, default=BENCH, help="record here instead of bench/")
    parser.add_argument("--plot", action="store_true", help="redraw bench/scale.png and stop")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print("RESULT " + json.dumps(run_step(args.child, Plan.from_json(args.plan))), flush=True)
        return
    if args.plot:
        print(f"wrote {plot(Outputs(args.out))}")
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    out = Outputs(args.out)
    if args.scale == "tiny" and out.folder == BENCH and not args.no_record:
        parser.error("scale tiny proves the harness works; record it elsewhere with --out DIR")
    steps = parse_steps(args.steps)
    if steps != STEPS and args.home is None:
        parser.error("--steps needs --home: the later steps read what the earlier ones left")
    host = machine()
    with tempfile.TemporaryDirectory(prefix=f"basketcast-scale-{args.scale}-") as tmp:
        home = args.home or Path(tmp)
        memory = DUCKDB_MEMORY[args.scale] if args.duckdb_memory is None else args.duckdb_memory
        plan = Plan(args.scale, home, args.train_models, args.user_models, memory)
        host["duckdb_memory_limit"] = memory or "default"
        results = run_scale(plan, args.repeat, steps)
        events = results[0].rows if steps[0] == "generate" else _events(_paths(home))
    if args.no_record:
        return
    out.folder.mkdir(parents=True, exist_ok=True)
    record(out, args.scale, plan.sizes, events, results, host)
    print(f"recorded in {out.results}; plot {plot(out)}")


if __name__ == "__main__":
    main()
