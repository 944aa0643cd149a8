"""Train the torch demand model on several processes: DistributedDataParallel under torchrun.

    torchrun --standalone --nproc-per-node 2 -m ml_jobs.demand.torch_ddp --home /tmp/bc
    torchrun --standalone --nproc-per-node 8 -m ml_jobs.demand.torch_ddp --history h.parquet

Each process (rank) holds the whole panel and the same network; the backend follows the device:
NCCL with one GPU per rank when CUDA is there, gloo on CPU. Training takes the steps of
`torch_train.train` with the same config, so the result equals the single-process one to
float rounding:

- Batches: `batch_size` stays the global batch. Every epoch all ranks draw the same shuffle
  (`epoch_order`); global batch k is cut as in one process and rank r takes every world-th of
  its samples from r (`shard`). The shards are disjoint, cover the epoch, and every rank takes
  one step per global batch. To keep the batch per device when adding devices, multiply
  `batch_size` by their number (a different run, with different numbers).
- Gradients: each rank scales its shard's mean loss by its share of the global batch's loss
  weight (one scalar all-reduce per step), and DDP averages the gradients, so the step is the
  gradient of the global batch mean, as in one process. Clipping and AdamW then see the same
  gradients on every rank.
- Dropout (off by default) draws its masks per rank, so with it the numbers match only in
  distribution; rank 0 draws the single-process stream.
- Rank 0 alone reads the data (and broadcasts it), loads and writes checkpoints (and broadcasts
  what it resumed from), and saves the model artifact; it also decides the `max_seconds` stop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from ml_jobs.demand.data import clean_history
from ml_jobs.demand.torch_data import PanelTensors
from ml_jobs.demand.torch_forecaster import TorchQuantile, TorchQuantileParams
from ml_jobs.demand.torch_model import DemandNet
from ml_jobs.demand.torch_train import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    checkpoint_state,
    cosine_lr,
    epoch_order,
    load_checkpoint,
    loss_denominator,
    on_device,
    resume,
    save_checkpoint,
    select_device,
    train,
    train_step,
)

DROPOUT_STREAM = 7919  # rank r seeds its dropout r * this past rank 0's (the one-process seed)


@dataclass(frozen=True)
class Cluster:
    """This process's place in the run that torchrun started."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str  # nccl | gloo | none (a single process outside torchrun)


def start(preference: str = "auto") -> Cluster:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
    device = select_device(preference)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Cluster(0, 1, 0, device, "none")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if local_rank >= visible:
            raise RuntimeError(
                f"rank {local_rank} of this node has no GPU ({visible} visible): start at most "
                f"{visible} processes per node (torchrun --nproc-per-node {visible})"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return Cluster(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


def shard(batch: torch.Tensor, rank: int, world_size: int) -> tuple[torch.Tensor, bool]:
    """This rank's part of one global batch: every `world_size`-th sample from position `rank`.

    A rank left with no sample (a last batch smaller than the world) gets the batch's first one
    and False: it still joins the step (DDP all-reduces on every rank) but with weight 0.
    """
    part = batch[rank::world_size]
    if len(part) == 0:
        return batch[:1], False
    return part, True


def _broadcast(value: Any) -> Any:
    """Rank 0's `value` on every rank (pickled)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def train_ddp(
    net: DemandNet,
    tensors: PanelTensors,
    rows: torch.Tensor,
    origins: torch.Tensor,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    stop_after_epochs: int | None = None,
    console: Console | None = None,
) -> TrainResult:
    """`torch_train.train` across the ranks of the process group (the same call on each).

    Without a process group (or with one rank) it is `train` itself.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return train(
            net, tensors, rows, origins, config, checkpoint_dir, stop_after_epochs, console
        )
    rank, world = dist.get_rank(), dist.get_world_size()
    if config.batch_size < world:
        raise ValueError(
            f"batch_size {config.batch_size} is smaller than the {world} processes: "
            f"raise it to at least {world} (it is the global batch, split across them)"
        )
    torch.set_num_threads(config.threads)
    device = select_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    net.to(device)
    data = on_device(tensors, device)
    rows_on, origins_on = rows.to(device), origins.to(device)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    result = TrainResult(epochs_run=0, device=device.type, world_size=world)
    state = load_checkpoint(checkpoint_dir, config) if rank == 0 else None
    resume(_broadcast(state), net, optimizer, result)
    cuda = device.type == "cuda"
    model = DistributedDataParallel(net, device_ids=[device.index] if cuda else None)

    last_epoch = (
        config.epochs if stop_after_epochs is None else min(stop_after_epochs, config.epochs)
    )
    n, bs, c = len(rows), config.batch_size, net.config
    console = console or Console(stderr=True, quiet=rank != 0)
    if result.resumed_from:
        console.log(f"torch demand model: resumed after epoch {result.resumed_from}")
    zero = torch.zeros((), device=device)
    started = time.perf_counter()
    seen = 0
    for epoch in range(result.epochs_run, last_epoch):
        model.train()
        torch.manual_seed(config.seed * 1000 + epoch + DROPOUT_STREAM * rank)
        order = epoch_order(n, config, epoch).to(device)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(config, epoch)
        total = torch.zeros((), device=device)
        for begin in range(0, n, bs):
            chunk = order[begin : begin + bs]
            pick, live = shard(chunk, rank, world)
            batch = data.batch(rows_on[pick], origins_on[pick], c.window, c.horizon)
            share = loss_denominator(net, batch, config) if live else zero
            whole = share.clone()
            dist.all_reduce(whole)
            # the shard's mean times its share of the batch's weight, times world (DDP averages)
            scale = world * share.clamp(min=1e-6) / whole.clamp(min=1e-6) if live else zero
            loss = train_step(model, net, optimizer, batch, config, device, scale)
            total += loss * (len(chunk) / world)
        dist.all_reduce(total)  # the sum over ranks: the global batch means, sample-weighted
        seen += n
        result.losses.append(float(total) / max(n, 1))
        result.epochs_run = epoch + 1
        console.log(
            f"torch demand model: epoch {epoch + 1}/{config.epochs} on {world} x {device.type}, "
            f"loss {result.losses[-1]:.4f}, {time.perf_counter() - started:.0f}s"
        )
        if checkpoint_dir is not None and rank == 0:
            save_checkpoint(
                checkpoint_dir / CHECKPOINT, checkpoint_state(net, optimizer, result, config)
            )
        over = config.max_seconds is not None and time.perf_counter() - started > config.max_seconds
        if _broadcast(over):
            break
    result.seconds = time.perf_counter() - started
    result.samples_per_s = seen / result.seconds if result.seconds > 0 else 0.0
    net.eval()
    return result


def read_history(args: argparse.Namespace) -> pd.DataFrame:
    """The demand history: a Parquet file, or the warehouse of a basketcast home."""
    if args.history is not None:
        if not args.history.exists():
            raise FileNotFoundError(f"--history {args.history} does not exist")
        return clean_history(pd.read_parquet(args.history))
    from ml_jobs.config import Paths
    from ml_jobs.demand.data import load_demand_data

    return load_demand_data(Paths(args.home)).history


def params_from(args: argparse.Namespace) -> TorchQuantileParams:
    """Default params changed by --params JSON ({"hidden": 64, "train": {"epochs": 4}}), flags."""
    try:
        changes: dict[str, Any] = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"--params is not JSON ({error}): {args.params}") from None
    train_changes = dict(changes.pop("train", {}))
    for flag in ("epochs", "batch_size", "threads", "device", "seed", "max_seconds"):
        if getattr(args, flag) is not None:
            train_changes[flag] = getattr(args, flag)
    base = TorchQuantileParams()
    try:
        return dataclasses.replace(
            base, train=dataclasses.replace(base.train, **train_changes), **changes
        )
    except TypeError as error:
        raise ValueError(f"--params names an unknown setting: {error}") from None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc-per-node N -m ml_jobs.demand.torch_ddp",
        description="Train the torch demand model with DistributedDataParallel; rank 0 saves it.",
    )
    home = Path(os.environ.get("BASKETCAST_HOME", ".basketcast"))
    parser.add_argument("--home", type=Path, default=home, help="basketcast home (warehouse)")
    parser.add_argument("--history", type=Path, help="demand history Parquet instead of --home")
    parser.add_argument("--out", type=Path, help="artifact folder (home/artifacts/torch_ddp)")
    parser.add_argument("--checkpoint-dir", type=Path, help="resumable checkpoints under here")
    parser.add_argument("--params", help="JSON changes to TorchQuantileParams")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch, split across the ranks")
    parser.add_argument("--threads", type=int, help="CPU threads per rank")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--stop-after-epochs", type=int, help="end early (resume later)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    params = params_from(args)
    cluster = start(params.train.device)
    try:
        history = read_history(args) if cluster.rank == 0 else None
        if cluster.world_size > 1:
            history = _broadcast(history)
        model = TorchQuantile(params)
        model.trainer = train_ddp
        model.checkpoint_root = args.checkpoint_dir
        model.console = Console(stderr=True, quiet=cluster.rank != 0)
        model.fit(history, stop_after_epochs=args.stop_after_epochs)
        summary = {**asdict(model.last_train), "backend": cluster.backend}
        if cluster.rank == 0:
            out = args.out or args.home / "artifacts" / "torch_ddp"
            summary["files"] = [str(p) for p in model.save(out)]
            print(json.dumps(summary))
        return summary
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, LookupError, RuntimeError) as error:
        print(f"torch_ddp: {error}", file=sys.stderr)
        sys.exit(2)
