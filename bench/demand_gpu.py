"""Torch demand model on a GPU: samples/s on CUDA (bf16 autocast) vs CPU, GPU utilisation, backtest.

Runs where neither DuckDB nor XGBoost is installed (a bare GPU machine with torch, numpy,
pandas, pyarrow): the demand history is exported once from a built warehouse to Parquet, carried
over, and read back as plain frames.

    .venv/bin/python bench/demand_gpu.py export --home /tmp/bc --out .device_data
    python3 bench/demand_gpu.py speed --data .device_data            # on the GPU machine
    python3 bench/demand_gpu.py backtest --device cuda --variants default quantile
    python3 bench/demand_gpu.py backtest --device cpu --workers 14 --variants all

`speed` fits the torch model once on all history on each device and samples `nvidia-smi` every
0.1 s while the GPU trains. `backtest` scores variants of the model on the same rolling cutoffs
as bench/demand_models.py (one process per variant with `--workers`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml_jobs.demand.backtest import BacktestConfig, backtest, summarize  # noqa: E402
from ml_jobs.demand.data import DemandData, clean_history, clean_promotions  # noqa: E402
from ml_jobs.demand.torch_forecaster import TorchQuantile, TorchQuantileParams  # noqa: E402

DEFAULT = TorchQuantileParams()
# name -> changes to the default params (train.* keys change the TrainConfig)
VARIANTS: dict[str, dict[str, object]] = {
    "old": {"head": "quantile", "window": 56, "decoder_norm": True, "quantile_mode": "discrete"},
    "quantile": {"head": "quantile"},
    "negbin_discrete": {"quantile_mode": "discrete"},
    "default": {},
    "seed1": {"train.seed": 1},
    "hidden64": {"hidden": 64},
    "item16": {"item_dim": 16},
    "item2": {"item_dim": 2},
    "decoder32": {"decoder_dim": 32},
    "lr1e-2": {"train.learning_rate": 1e-2},
    "epochs4": {"train.epochs": 4},
    "seeds3": {"n_seeds": 3},
    "bs4096": {"train.batch_size": 4096},
}
COLUMNS = ("wape", "wape_vs_truth", "pinball_mean", "coverage_p10_p90", "bias", "mase")


def params_of(changes: dict[str, object], device: str, threads: int) -> TorchQuantileParams:
    top = {k: v for k, v in changes.items() if not k.startswith("train.")}
    train = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith("train.")}
    train_config = replace(DEFAULT.train, device=device, threads=threads, **train)
    return replace(DEFAULT, train=train_config, **top)


def export(home: Path, out: Path) -> None:
    """Write the demand history, planned promotions and truth of a built warehouse to `out`."""
    from ml_jobs.config import Paths
    from ml_jobs.demand.data import load_demand_data, load_truth

    paths = Paths(home)
    data = load_demand_data(paths)
    out.mkdir(parents=True, exist_ok=True)
    data.history.to_parquet(out / "history.parquet", index=False)
    if data.promotions is not None:
        data.promotions.to_parquet(out / "promotions.parquet", index=False)
    truth = load_truth(paths.truth)
    if truth is not None:
        truth.to_parquet(out / "truth.parquet", index=False)
    print(f"exported {len(data.history)} rows, {data.n_items} items to {out}")


def load(folder: Path) -> tuple[DemandData, pd.DataFrame | None]:
    history = clean_history(pd.read_parquet(folder / "history.parquet"))
    promo_file = folder / "promotions.parquet"
    promotions = clean_promotions(pd.read_parquet(promo_file)) if promo_file.exists() else None
    truth_file = folder / "truth.parquet"
    truth = pd.read_parquet(truth_file) if truth_file.exists() else None
    return DemandData(history, promotions, history["demand_date"].max().date()), truth


class GpuSampler:
    """Samples GPU utilisation (%) with nvidia-smi every `period` seconds in a thread."""

    def __init__(self, period: float = 0.1) -> None:
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def quiet_model(params: TorchQuantileParams) -> TorchQuantile:
    model = TorchQuantile(params)
    model.console = Console(quiet=True)
    return model


def fit_once(data: DemandData, params: TorchQuantileParams) -> dict[str, float]:
    model = quiet_model(params)
    started = time.perf_counter()
    if params.train.device == "cuda":
        with GpuSampler() as sampler:
            model.fit(data.history)
        busy = [s for s in sampler.samples]
        util = {
            "gpu_util_mean_pct": float(np.mean(busy)) if busy else float("nan"),
            "gpu_util_median_pct": float(np.median(busy)) if busy else float("nan"),
            "gpu_util_samples": float(len(busy)),
            "gpu_mem_peak_mb": torch.cuda.max_memory_allocated() / 2**20,
        }
    else:
        model.fit(data.history)
        util = {}
    total = time.perf_counter() - started
    train = model.last_train
    return {
        "fit_s": total,
        "train_s": train.seconds,
        "samples_per_s": train.samples_per_s,
        "epochs": float(train.epochs_run),
        **util,
    }


def speed(data: DemandData, variant: str, cpu_threads: list[int]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    changes = VARIANTS[variant]
    if torch.cuda.is_available():
        fit_once(data, params_of({**changes, "train.epochs": 1}, "cuda", 1))  # warm-up
        rows.append(
            {"device": "cuda", "threads": 1, **fit_once(data, params_of(changes, "cuda", 1))}
        )
    for threads in cpu_threads:
        rows.append(
            {
                "device": "cpu",
                "threads": threads,
                **fit_once(data, params_of(changes, "cpu", threads)),
            }
        )
    return rows


def score_variant(args: tuple[str, str, int, str, int]) -> dict[str, object]:
    name, device, threads, folder, cutoffs = args
    torch.set_num_threads(threads)
    data, truth = load(Path(folder))
    params = params_of(VARIANTS[name], device, threads)
    started = time.perf_counter()
    result = backtest(
        lambda: quiet_model(params),
        data,
        BacktestConfig(n_cutoffs=cutoffs, per_horizon=False),
        truth,
    )
    return {
        "variant": name,
        "device": device,
        "seconds": time.perf_counter() - started,
        **summarize(result.metrics),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("export", "speed", "backtest"))
    parser.add_argument("--home", type=Path, help="export: basketcast home with a warehouse")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--data", type=Path, default=Path(".device_data"))
    parser.add_argument("--variant", default="default", help="speed: the variant timed")
    parser.add_argument("--cpu-threads", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--variants", nargs="*", default=["default"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="backtest: torch threads each")
    parser.add_argument("--cutoffs", type=int, default=3)
    args = parser.parse_args()
    if args.command == "export":
        export(args.home, args.data)
        return
    machine = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg()[0],
    }
    print(json.dumps(machine), flush=True)
    data, _ = load(args.data)
    if args.command == "speed":
        rows = speed(data, args.variant, args.cpu_threads)
        name = f"speed_{args.variant}.json"
    else:
        names = list(VARIANTS) if args.variants == ["all"] else args.variants
        jobs = [(n, args.device, args.threads, str(args.data), args.cutoffs) for n in names]
        if args.workers > 1:
            with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
                rows = []
                for row in pool.map(score_variant, jobs):
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        else:
            rows = []
            for job in jobs:
                rows.append(score_variant(job))
                print(json.dumps(rows[-1]), flush=True)
        name = f"backtest_{args.device}.json"
    for row in rows:
        print(json.dumps(row), flush=True)
    if rows and args.command == "backtest":
        frame = pd.DataFrame(rows).set_index("variant")
        print(frame[[c for c in (*COLUMNS, "seconds") if c in frame]].round(3).to_string())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
