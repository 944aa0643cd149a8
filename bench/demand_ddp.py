"""Torch demand model on several processes (DDP under torchrun): samples/s for 1 vs N ranks.

    .venv/bin/python bench/demand_ddp.py                       # demo shop, CPU, 1 vs 2 ranks
    .venv/bin/python bench/demand_ddp.py --home /tmp/bc --repeats 5 --no-record
    python bench/demand_ddp.py --history h.parquet --device cuda --nproc 1 2 4 8   # on GPUs

Each configuration is one `torchrun --standalone -m ml_jobs.demand.torch_ddp` launch; the runs
are interleaved (every configuration once per round) so a change of machine load hits them all.
samples/s is the training loop's own (from the run's TrainResult: all ranks' samples over the
wall time of the epochs); the launch time adds process start, imports and data preparation.

Configurations per rank count N: the same global batch as one process (`--batch-size`, split
across the ranks: the run that equals single-process training), and N times that batch (each
rank keeps the one-process batch: fewer, larger steps, different numbers). On CPU one process
with N threads is added, the same cores without DDP. Results go to bench/RESULTS.md.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Setup:
    label: str
    nproc: int
    batch_size: int
    threads: int


def export_history(home: Path, out: Path) -> Path:
    """The demo shop's demand history as Parquet (generating and building the shop if needed)."""
    from ml_jobs import pipeline
    from ml_jobs.config import Paths
    from ml_jobs.demand.data import load_demand_data

    paths = Paths(home)
    if not paths.warehouse.exists():
        from ml_jobs.generate import ShopConfig, generate_shop

        os.environ["BASKETCAST_HOME"] = str(home)
        generate_shop(ShopConfig(), paths)
        pipeline.build_warehouse(paths)
    target = out / "history.parquet"
    load_demand_data(paths).history.to_parquet(target, index=False)
    return target


def launch(setup: Setup, history: Path, args: argparse.Namespace, out: Path) -> dict:
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        *("--nproc-per-node", str(setup.nproc), "-m", "ml_jobs.demand.torch_ddp"),
        *("--history", str(history), "--out", str(out), "--device", args.device),
        *("--epochs", str(args.epochs), "--batch-size", str(setup.batch_size)),
        *("--threads", str(setup.threads)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(setup.threads)}
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"{setup.label} failed:\n{run.stderr[-3000:]}")
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    return {"samples_per_s": summary["samples_per_s"], "train_s": summary["seconds"], "wall": wall}


def setups(args: argparse.Namespace) -> list[Setup]:
    bs = args.batch_size
    out = [Setup(f"1 process, batch {bs}", 1, bs, 1)]
    for n in (n for n in args.nproc if n > 1):
        out.append(Setup(f"{n} processes, global batch {bs} ({bs // n} per rank)", n, bs, 1))
        out.append(Setup(f"{n} processes, global batch {n * bs} ({bs} per rank)", n, n * bs, 1))
        if args.device == "cpu":
            out.append(Setup(f"1 process, {n} threads, batch {bs} (no DDP)", 1, bs, n))
    return out


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/basketcast-bench-ddp"))
    parser.add_argument("--history", type=Path, help="demand history Parquet (skips --home)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as folder:
        work = Path(folder)
        history = args.history or export_history(args.home, work)
        load_before = load_average()
        plan = setups(args)
        runs: dict[str, list[dict]] = {s.label: [] for s in plan}
        for round_ in range(args.repeats):
            for setup in plan:
                result = launch(setup, history, args, work / "model")
                runs[setup.label].append(result)
                print(f"round {round_ + 1} {setup.label}: {result['samples_per_s']:,.0f} samples/s")
        load_after = load_average()

    base = statistics.median(r["samples_per_s"] for r in runs[plan[0].label])
    lines = [
        "| configuration | samples/s (median) | vs 1 process | train s | launch s |",
        "|---|---:|---:|---:|---:|",
    ]
    for setup in plan:
        rows = runs[setup.label]
        rate = statistics.median(r["samples_per_s"] for r in rows)
        train_s = statistics.median(r["train_s"] for r in rows)
        wall = statistics.median(r["wall"] for r in rows)
        lines.append(
            f"| {setup.label} | {rate:,.0f} | {rate / base:.2f}× | {train_s:.1f} | {wall:.1f} |"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    text = "\n".join(
        [
            f"### Torch demand model on several processes, DDP (bench/demand_ddp.py) — {stamp}",
            "",
            f"{device}, {os.cpu_count()} cores, torch {torch.__version__}, Python "
            f"{platform.python_version()}; load average (1/5/15 min) {load_before} at the start, "
            f"{load_after} at the end. Default model, {args.epochs} epochs on "
            f"{history.name if args.history else 'the demo shop'}; each row the median of "
            f"{args.repeats} interleaved launches (`torchrun --standalone`, gloo on CPU, NCCL "
            "on GPU), one thread per rank unless stated.",
            "",
            *lines,
            "",
        ]
    )
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
