"""Distributed training of the torch demand model: 2 CPU processes under torchrun (gloo).

The run must equal single-process training with the same config: the global batch and the
sample order are the same, each rank scales its shard's loss by its share of the batch and DDP
averages the gradients, so losses and weights agree to float rounding. The batch size is picked
so that the shards are uneven (an odd batch) and the last batch holds a single sample (one rank
steps with weight 0).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from rich.console import Console
from test_demand import synthetic_demand

from ml_jobs.demand.data import clean_history, to_panel
from ml_jobs.demand.torch_data import panel_tensors, training_samples
from ml_jobs.demand.torch_ddp import params_from, parse, shard
from ml_jobs.demand.torch_forecaster import TorchQuantile, TorchQuantileParams
from ml_jobs.demand.torch_train import CHECKPOINT, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden": 64, "decoder_dim": 8, "train": {"epochs": 3, "threads": 1}}


def n_samples(history: pd.DataFrame, params: TorchQuantileParams) -> int:
    tensors = panel_tensors(
        to_panel(history), params.horizon, None, {}, {}, params.train.min_origin
    )
    rows, _ = training_samples(tensors, params.train.min_origin, params.train.origin_stride)
    return len(rows)


def test_shards_are_disjoint_cover_the_epoch_and_take_equal_steps():
    order = torch.randperm(1045, generator=torch.Generator().manual_seed(0))
    for world, batch_size in ((2, 261), (3, 100), (4, 4), (2, 2)):
        taken, steps = [], []
        for rank in range(world):
            mine = []
            for begin in range(0, len(order), batch_size):
                part, live = shard(order[begin : begin + batch_size], rank, world)
                assert len(part) >= 1
                if live:
                    mine.append(part)
            steps.append(len(range(0, len(order), batch_size)))
            taken.append(torch.cat(mine))
        everything = torch.cat(taken)
        assert len(everything) == len(order)  # disjoint ...
        assert torch.equal(everything.sort().values, order.sort().values)  # ... and complete
        assert len(set(steps)) == 1


def test_bad_settings_name_what_to_fix():
    with pytest.raises(ValueError, match="unknown setting"):
        params_from(parse(["--params", '{"hiden": 64}']))
    with pytest.raises(ValueError, match="not JSON"):
        params_from(parse(["--params", "hidden=64"]))
    params = params_from(parse(["--params", json.dumps(TINY), "--batch-size", "99"]))
    assert params.hidden == 64 and params.train.batch_size == 99 and params.train.epochs == 3


def test_two_cpu_processes_match_single_process_training(tmp_path: Path):
    frame, _ = synthetic_demand(n_items=16, n_days=150, seed=3)
    history = clean_history(frame)
    base = TorchQuantileParams(hidden=64, decoder_dim=8, train=TrainConfig(**TINY["train"]))
    n = n_samples(history, base)
    # an odd global batch (shards of unequal size) leaving one sample for the last step
    batch_size = next(b for b in range(201, n, 2) if n % b == 1)
    params = dataclasses.replace(base, train=dataclasses.replace(base.train, batch_size=batch_size))
    history.to_parquet(tmp_path / "history.parquet", index=False)
    settings = {**TINY, "train": {**TINY["train"], "batch_size": batch_size}}

    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"),
        *("-m", "ml_jobs.demand.torch_ddp", "--history", str(tmp_path / "history.parquet")),
        *("--out", str(tmp_path / "ddp"), "--checkpoint-dir", str(tmp_path / "checkpoints")),
        *("--params", json.dumps(settings)),
    ]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    run = subprocess.Popen(command, cwd=ROOT, start_new_session=True, **pipes)
    try:
        single = TorchQuantile(params)  # trained here while the ranks start
        single.console = Console(quiet=True)
        single.fit(history)
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:  # the launcher and its ranks
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, stderr.decode()[-3000:]
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["backend"] == "gloo"
    assert summary["epochs_run"] == 3 and summary["samples_per_s"] > 0

    ddp = TorchQuantile.load(tmp_path / "ddp")
    saved = json.loads((tmp_path / "ddp" / "model_config.json").read_text())["training"]
    assert saved["losses"] == pytest.approx(single.last_train.losses, rel=1e-5)
    reference = single.net.state_dict()
    for name, weights in ddp.net.state_dict().items():
        torch.testing.assert_close(weights, reference[name], rtol=1e-4, atol=1e-5, msg=name)

    # rank 0 wrote one checkpoint, in the single-process format: a fit with the same folder
    # finds training finished there and only loads it
    written = sorted((tmp_path / "checkpoints").rglob(CHECKPOINT))
    assert len(written) == 1
    again = TorchQuantile(params)
    again.console, again.checkpoint_root = Console(quiet=True), tmp_path / "checkpoints"
    again.fit(history)
    assert again.last_train.resumed_from == 3
    for name, weights in again.net.state_dict().items():
        torch.testing.assert_close(weights, ddp.net.state_dict()[name], rtol=0, atol=0)
