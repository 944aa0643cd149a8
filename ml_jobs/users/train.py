"""Training loop of the user sequence model: seeds, device, AMP, calibration, checkpoints.

    fit(train, config)  ->  TrainedSequenceModel   (score() for any Examples, save()/load())

The newest cutoff of the training rows (or the rows `calibrate_on` marks, e.g. the newest few
cutoffs) is held out: the network trains on the older cutoffs, then a Platt scaler
(a*logit + b) is fitted on the held-out slice so predicted probabilities match observed
purchase rates on data the network has not seen. When `calibrate_on` marks no rows the
network trains on every row and its own probabilities are used (an identity scaler). CUDA
with bf16 autocast is used when present, otherwise the CPU with `threads` threads.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import expit

from ml_jobs.users.calibration import Platt, held_out_cutoffs
from ml_jobs.users.examples import ArrayScaler, Examples, StaticScaler
from ml_jobs.users.model import Batch, SequenceModelConfig, UserSequenceModel, loss_terms


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    spend_weight: float = 0.3
    category_weight: float = 0.5
    item_weight: float = 0.5
    d_model: int = 32
    d_user: int = 32
    seed: int = 0
    threads: int = 1  # small matmuls: more threads only wait on each other on a busy CPU
    device: str = "auto"  # auto | cpu | cuda


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def static_inputs(ex: Examples, scaler: StaticScaler, activity: ArrayScaler) -> np.ndarray:
    """(n, n_static) float32: scaled Feast features, history summary, scaled activity."""
    return np.concatenate(
        [
            scaler.transform(ex.features),
            ex.seq.history / 5.0,
            activity.transform(ex.activity),
        ],
        axis=1,
    ).astype(np.float32)


def dense_rows(matrix: np.ndarray | sp.spmatrix, idx: np.ndarray) -> np.ndarray:
    """Rows `idx` of a dense or sparse matrix as a dense float32 array (one batch at a time)."""
    rows = matrix[idx]
    return np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float32)


def make_batch(ex: Examples, idx: np.ndarray, static: np.ndarray) -> Batch:
    s = ex.seq
    numeric = np.stack([s.log_gap_hours[idx], s.log_price[idx]], axis=-1)
    return Batch(
        item=torch.from_numpy(s.item[idx]),
        category=torch.from_numpy(s.category[idx]),
        kind=torch.from_numpy(s.kind[idx]),
        numeric=torch.from_numpy(numeric),
        static=torch.from_numpy(static[idx]),
        item_signals=torch.from_numpy(ex.item_signals[ex.cutoff_index[idx]]),
        user_items=torch.from_numpy(dense_rows(ex.user_items, idx).reshape(len(idx), 2, -1)),
        category_share=torch.from_numpy(ex.category_share[idx]),
    )


@dataclass
class Scores:
    p_purchase: np.ndarray  # (n,)
    expected_spend: np.ndarray  # (n,)
    category_probs: np.ndarray  # (n, C)
    item_scores: np.ndarray  # (n, I) logits; score_models asks for a batch of users at a time
    p_uncalibrated: np.ndarray | None = None  # (n,) before the Platt scaler


class TrainedSequenceModel:
    name = "torch_sequence"
    kind = "torch"
    version = "1"

    def __init__(
        self,
        net: UserSequenceModel,
        scaler: StaticScaler,
        activity: ArrayScaler,
        platt: Platt,
        spend_scale: float,
        max_len: int,
        device: torch.device,
    ) -> None:
        self.net, self.scaler, self.activity, self.platt = net, scaler, activity, platt
        self.spend_scale, self.max_len, self.device = spend_scale, max_len, device

    @torch.no_grad()
    def raw(self, ex: Examples, batch_size: int = 1024) -> Scores:
        self.net.eval()
        parts: list[list[np.ndarray]] = [[], [], [], []]
        static = static_inputs(ex, self.scaler, self.activity)
        for start in range(0, len(ex), batch_size):
            idx = np.arange(start, min(start + batch_size, len(ex)))
            with _autocast(self.device):
                out = self.net(make_batch(ex, idx, static).to(self.device))
            parts[0].append(out.propensity_logit.float().cpu().numpy())
            parts[1].append(out.log_spend.float().cpu().numpy())
            parts[2].append(torch.softmax(out.category_logits.float(), -1).cpu().numpy())
            parts[3].append(out.item_logits.float().cpu().numpy())
        c = self.net.config
        empty = [np.zeros(0), np.zeros(0), np.zeros((0, c.n_categories)), np.zeros((0, c.n_items))]
        cat = [np.concatenate(p) if p else e for p, e in zip(parts, empty, strict=True)]
        # log-spend is clipped: an undertrained net can emit logits that overflow exp().
        spend = np.exp(np.clip(cat[1], -30.0, 30.0)) * self.spend_scale
        return Scores(cat[0], spend, cat[2], cat[3])

    def score(self, ex: Examples) -> Scores:
        scores = self.raw(ex)
        scores.p_uncalibrated = expit(scores.p_purchase)
        scores.p_purchase = self.platt(scores.p_purchase)
        return scores

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "user_sequence_model.pt"
        torch.save(
            {
                "config": asdict(self.net.config),
                "state_dict": self.net.state_dict(),
                "scaler": asdict(self.scaler),
                "activity": asdict(self.activity),
                "platt": asdict(self.platt),
                "spend_scale": self.spend_scale,
                "max_len": self.max_len,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, directory: Path, device: str = "auto") -> TrainedSequenceModel:
        dev = pick_device(device)
        saved = torch.load(directory / "user_sequence_model.pt", map_location=dev)
        net = UserSequenceModel(SequenceModelConfig(**saved["config"])).to(dev)
        net.load_state_dict(saved["state_dict"])
        scaler = saved["scaler"]
        return cls(
            net,
            StaticScaler(tuple(scaler["names"]), tuple(scaler["mean"]), tuple(scaler["std"])),
            ArrayScaler(tuple(saved["activity"]["mean"]), tuple(saved["activity"]["std"])),
            Platt(**saved["platt"]),
            float(saved["spend_scale"]),
            int(saved["max_len"]),
            dev,
        )


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def fit(
    train: Examples,
    feature_names: list[str],
    item_category: np.ndarray,
    n_categories: int,
    config: TrainConfig,
    log=print,
    calibrate_on: np.ndarray | None = None,
) -> TrainedSequenceModel:
    """Train on all but the newest cutoff of `train` (or the rows `calibrate_on` marks) and
    calibrate on those held-out rows; with no rows marked, train on all and do not calibrate."""
    if train.purchased is None or train.item_counts is None or train.category_counts is None:
        raise ValueError("training examples need targets (build them with with_targets=True)")
    seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    torch.set_flush_denormal(True)
    device = pick_device(config.device)
    held = calibrate_on if calibrate_on is not None else held_out_cutoffs(train.cutoff_ts, 1)
    split = bool(held.any() and (~held).any())
    fit_rows = train.subset(~held) if split else train
    scaler = StaticScaler.fit(fit_rows.features, feature_names)
    activity = ArrayScaler.fit(fit_rows.activity)
    static = static_inputs(fit_rows, scaler, activity)
    spend_scale = float(max(np.mean(fit_rows.spend), 1e-3))
    net_config = SequenceModelConfig(
        n_items=len(item_category),
        n_categories=n_categories,
        item_category=tuple(int(c) for c in item_category),
        n_static=static.shape[1],
        n_item_signals=fit_rows.item_signals.shape[2],
        n_shares=fit_rows.category_share.shape[1],
        d_model=config.d_model,
        d_user=config.d_user,
    )
    net = UserSequenceModel(net_config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(fit_rows)
    steps = config.epochs * math.ceil(n / config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=max(steps, 1))
    weights = {
        "propensity": 1.0,
        "spend": config.spend_weight,
        "category": config.category_weight,
        "item": config.item_weight,
    }
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(n)
        totals = dict.fromkeys(weights, 0.0)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            batch = make_batch(fit_rows, idx, static).to(device)
            target = [
                torch.from_numpy(dense_rows(a, idx)).to(device)
                for a in (
                    fit_rows.purchased,
                    fit_rows.spend,
                    fit_rows.item_counts,
                    fit_rows.category_counts,
                )
            ]
            with _autocast(device):
                out = net(batch)
            terms = loss_terms(out, *target, spend_scale=spend_scale)
            loss = sum(weights[k] * v.float() for k, v in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            for k, v in terms.items():
                totals[k] += float(v.detach()) * len(idx) / n
        summary = " ".join(f"{k} {v:.4f}" for k, v in totals.items())
        log(f"epoch {epoch + 1}/{config.epochs}: {summary} ({time.perf_counter() - started:.1f}s)")
    model = TrainedSequenceModel(
        net, scaler, activity, Platt(), spend_scale, fit_rows.seq.item.shape[1], device
    )
    if split:  # otherwise the identity: the network's own probabilities
        calib_rows = train.subset(held)
        raw = model.raw(calib_rows)
        model.platt = Platt().fit(raw.p_purchase, calib_rows.purchased.astype(np.float64))
    return model


def write_checkpoint_info(directory: Path, info: dict) -> None:
    (directory / "training.json").write_text(json.dumps(info, indent=2, default=str))
