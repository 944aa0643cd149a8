"""Training loop of the torch demand network, top to bottom: device, seeds, batches, checkpoints.

- Device: CUDA when a GPU is there (bf16 autocast), else CPU with a fixed number of threads.
- Seeds: every epoch reseeds its shuffle and dropout from (seed, epoch), so an interrupted run
  that resumes from its last checkpoint takes exactly the steps an uninterrupted one takes.
- Checkpoints: after every epoch the model, optimizer and loss history are written atomically to
  `checkpoint_dir/checkpoint.pt`; a later call with the same folder resumes after the last
  finished epoch (and returns at once when training had already finished).
- Learning rate: cosine decay over the planned epochs, computed from the epoch number alone, so
  there is no scheduler state to lose.

`torch_ddp` trains the same way on several processes: it shares the shuffle (`epoch_order`), the
optimizer step (`train_step`) and the checkpoint helpers with the loop here.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from ml_jobs.demand.base import QUANTILES
from ml_jobs.demand.torch_data import PanelTensors
from ml_jobs.demand.torch_model import DemandNet, negbin_nll, pinball, recent_level

CHECKPOINT = "checkpoint.pt"
RUN_ONLY = ("threads", "device", "max_seconds")  # may change between a kill and its resume


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 512
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    min_origin: int = 13  # first origin column trained on (two weeks of history)
    origin_stride: int = 2  # days between training origins (1 doubles the time, no gain seen)
    loss_scale_power: float = 1.0  # 1: pinball in units (the metric); 0: in units / level
    seed: int = 0
    threads: int = 1  # CPU threads (torch.set_num_threads)
    device: str = "auto"  # auto | cpu | cuda
    max_seconds: float | None = None  # stop after the epoch that passes this budget


@dataclass
class TrainResult:
    epochs_run: int  # epochs finished in all, including those before a resume
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    seconds: float = 0.0  # wall time of this call
    samples_per_s: float = 0.0  # training throughput of this call
    device: str = "cpu"
    resumed_from: int = 0  # epochs already finished when this call started
    world_size: int = 1  # processes that trained together (torch_ddp)


def combine(results: list[TrainResult]) -> TrainResult:
    """One result for an ensemble: summed time, mean losses, samples/s over all members."""
    first = results[0]
    seconds = sum(r.seconds for r in results)
    samples = sum(r.samples_per_s * r.seconds for r in results)
    return TrainResult(
        epochs_run=first.epochs_run,
        losses=[sum(x) / len(results) for x in zip(*(r.losses for r in results), strict=True)],
        seconds=seconds,
        samples_per_s=samples / seconds if seconds > 0 else 0.0,
        device=first.device,
        resumed_from=first.resumed_from,
        world_size=first.world_size,
    )


def select_device(preference: str = "auto") -> torch.device:
    """CUDA when asked for or available, else CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but no CUDA GPU is visible")
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU; plain float32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cosine_lr(config: TrainConfig, epoch: int) -> float:
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / max(config.epochs, 1)))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a killed write leaves the previous one intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def resumable(config: TrainConfig) -> dict[str, Any]:
    """The settings a checkpoint must share to be resumed: all but where and how fast it ran."""
    return {k: v for k, v in asdict(config).items() if k not in RUN_ONLY}


def load_checkpoint(checkpoint_dir: Path | None, config: TrainConfig) -> dict[str, Any] | None:
    """The folder's checkpoint if it was written by a run with the same training config."""
    if checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT).exists():
        return None
    state = torch.load(checkpoint_dir / CHECKPOINT, map_location="cpu", weights_only=False)
    return state if state.get("train_config") == resumable(config) else None


def loss_denominator(
    net: DemandNet, batch: dict[str, torch.Tensor], config: TrainConfig
) -> torch.Tensor:
    """The weight `batch_loss` divides by (before its clamp): its mean is a sum over this."""
    if net.config.head == "negbin":
        return batch["mask"].sum()
    level = recent_level(batch["past"][..., 0], batch["past"][..., 1])
    return (batch["mask"] * (level ** (config.loss_scale_power - 1.0))[:, None]).sum()


def batch_loss(
    net: DemandNet, output: torch.Tensor, batch: dict[str, torch.Tensor], config: TrainConfig
) -> torch.Tensor:
    """NLL of the negbin head (level weights scored no better); pinball of the quantile head."""
    if net.config.head == "negbin":
        return negbin_nll(output, batch["target"], batch["mask"], None)
    level = recent_level(batch["past"][..., 0], batch["past"][..., 1])
    weight = level ** (config.loss_scale_power - 1.0)
    return pinball(output, batch["target"], batch["mask"], QUANTILES, weight)


def on_device(tensors: PanelTensors, device: torch.device) -> PanelTensors:
    """The panel's tensors moved to `device` (the whole history: batches index it there)."""
    return PanelTensors(
        past=tensors.past.to(device),
        known=tensors.known.to(device),
        item_index=tensors.item_index.to(device),
        category_index=tensors.category_index.to(device),
        first_day=tensors.first_day.to(device),
        n_days=tensors.n_days,
        cum_units=tensors.cum_units.to(device),
        cum_observed=tensors.cum_observed.to(device),
        origin_stats=tensors.origin_stats.to(device),
    )


def epoch_order(n: int, config: TrainConfig, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch, a function of (seed, epoch) alone."""
    shuffle = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    return torch.randperm(n, generator=shuffle)


def train_step(
    model: torch.nn.Module,
    net: DemandNet,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    config: TrainConfig,
    device: torch.device,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """One optimizer step on a batch; returns the (detached) loss it stepped on.

    `model` is `net` or a wrapper of it (DistributedDataParallel); `scale` multiplies the loss
    before backward (torch_ddp turns a shard's mean into its part of the global batch mean).
    """
    with autocast(device):
        q = model(
            batch["past"],
            batch["future"],
            batch["seasonal"],
            batch["item"],
            batch["category"],
            batch["static"],
        )
    loss = batch_loss(net, q.float(), batch, config)
    if scale is not None:
        loss = loss * scale
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    optimizer.step()
    return loss.detach()


def checkpoint_state(
    net: DemandNet, optimizer: torch.optim.Optimizer, result: TrainResult, config: TrainConfig
) -> dict[str, Any]:
    return {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": result.epochs_run,
        "losses": result.losses,
        "train_config": resumable(config),
    }


def resume(
    state: dict[str, Any] | None,
    net: DemandNet,
    optimizer: torch.optim.Optimizer,
    result: TrainResult,
) -> None:
    """Load a checkpoint (if any) into the net, optimizer and result."""
    if state is None:
        return
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    result.epochs_run = result.resumed_from = int(state["epoch"])
    result.losses = list(state["losses"])


def train(
    net: DemandNet,
    tensors: PanelTensors,
    rows: torch.Tensor,
    origins: torch.Tensor,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    stop_after_epochs: int | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Fit `net` on the (item row, origin) samples; resume from `checkpoint_dir` if it holds one.

    `stop_after_epochs` ends the call early after that many epochs in all (as a kill would,
    minus the lost partial epoch): the next call resumes from there.
    """
    torch.set_num_threads(config.threads)
    device = select_device(config.device)
    net.to(device)
    data = on_device(tensors, device)
    rows_on, origins_on = rows.to(device), origins.to(device)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    result = TrainResult(epochs_run=0, device=str(device))
    resume(load_checkpoint(checkpoint_dir, config), net, optimizer, result)

    last_epoch = (
        config.epochs if stop_after_epochs is None else min(stop_after_epochs, config.epochs)
    )
    n, bs, c = len(rows), config.batch_size, net.config
    console = console or Console(stderr=True)
    if result.resumed_from:
        console.log(f"torch demand model: resumed after epoch {result.resumed_from}")
    started = time.perf_counter()
    seen = 0
    for epoch in range(result.epochs_run, last_epoch):
        net.train()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout of this epoch
        order = epoch_order(n, config, epoch).to(device)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(config, epoch)
        total, count = torch.zeros((), device=device), 0  # summed on the device: no sync
        for start in range(0, n, bs):
            pick = order[start : start + bs]
            batch = data.batch(rows_on[pick], origins_on[pick], c.window, c.horizon)
            loss = train_step(net, net, optimizer, batch, config, device)
            total += loss * len(pick)
            count += len(pick)
        seen += count
        result.losses.append(float(total) / max(count, 1))
        result.epochs_run = epoch + 1
        console.log(
            f"torch demand model: epoch {epoch + 1}/{config.epochs} on {device}, "
            f"loss {result.losses[-1]:.4f}, {time.perf_counter() - started:.0f}s"
        )
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir / CHECKPOINT, checkpoint_state(net, optimizer, result, config)
            )
        over_budget = config.max_seconds is not None and (
            time.perf_counter() - started > config.max_seconds
        )
        if over_budget:
            break
    result.seconds = time.perf_counter() - started
    result.samples_per_s = seen / result.seconds if result.seconds > 0 else 0.0
    net.eval()
    return result
