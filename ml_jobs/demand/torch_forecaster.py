"""The torch global quantile forecaster: DemandNet behind the DemandModel interface.

fit:     history -> Panel -> tensors -> every (item, origin) sample -> `torch_train.train`
predict: history up to `as_of` + planned promotions -> one sample per item at `as_of`
save:    state dicts, one per seed (`model.pt`) + config and vocabularies (`model_config.json`)

Setting `checkpoint_root` before `fit` makes training resumable: each fit checkpoints into a
sub-folder named by a fingerprint of its data and config, so a killed fit started again on the
same history continues after its last finished epoch (and a finished one is not trained again).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console

from ml_jobs.demand.base import QUANTILES, forecast_frame
from ml_jobs.demand.data import history_until, known_future, to_panel
from ml_jobs.demand.torch_data import (
    FUTURE_FEATURES,
    STATIC_FEATURES,
    panel_tensors,
    training_samples,
)
from ml_jobs.demand.torch_model import (
    HEADS,
    QUANTILE_MODES,
    DemandNet,
    NetConfig,
    negbin_quantiles,
)
from ml_jobs.demand.torch_train import (
    TrainConfig,
    TrainResult,
    autocast,
    combine,
    resumable,
    select_device,
    train,
)


@dataclass(frozen=True)
class TorchQuantileParams:
    window: int = 112  # 16 weeks read (56 scored pinball 0.373, 168 scored 0.371, 112 0.369)
    horizon: int = 28
    hidden: int = 128
    decoder_dim: int = 16
    n_blocks: int = 2
    dropout: float = 0.0  # dropout noise in training widened the p10-p90 band
    item_dim: int = 8
    category_dim: int = 4
    head: str = "negbin"  # see torch_model: a negative binomial, or quantiles by pinball
    n_seeds: int = 1  # networks trained from different seeds; their quantiles are averaged
    decoder_norm: bool = (
        False  # LayerNorm on the decoder output, as in v0.1 (worse, see torch_model)
    )
    quantile_mode: str = "mid"  # negbin head: how p10 and p90 are read off the counts
    train: TrainConfig = field(default_factory=TrainConfig)

    def net_config(self, n_items: int, n_categories: int) -> NetConfig:
        return NetConfig(
            window=self.window,
            horizon=self.horizon,
            n_future=len(FUTURE_FEATURES),
            n_static=len(STATIC_FEATURES),
            n_items=n_items,
            n_categories=n_categories,
            item_dim=self.item_dim,
            category_dim=self.category_dim,
            hidden=self.hidden,
            decoder_dim=self.decoder_dim,
            n_blocks=self.n_blocks,
            dropout=self.dropout,
            head=self.head,
            decoder_norm=self.decoder_norm,
        )


def fingerprint(history: pd.DataFrame, params: dict[str, Any]) -> str:
    """Short hash of what a fit sees: its history (items, days, units) and its config."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(
        pd.util.hash_pandas_object(history[["item_id", "demand_date", "units_sold"]]).values
    )
    return digest.hexdigest()[:16]


def _vocab(values: np.ndarray) -> dict[int, int]:
    """Embedding row per id, from 1 (row 0 stands for an id not seen in training)."""
    return {int(v): k + 1 for k, v in enumerate(np.unique(values))}


class TorchQuantile:
    """Global dense encoder-decoder over all items, p10/p50/p90 for horizons 1..H.

    `n_seeds` > 1 trains that many networks and averages their quantiles (no gain on the demo
    shop: pinball 0.373 with three vs 0.371 with one).
    """

    name = "torch_quantile"
    kind = "torch"
    version = "0.2.0"  # 0.2: negative binomial head, 112-day window, decoder without LayerNorm

    def __init__(self, params: TorchQuantileParams | None = None) -> None:
        self.config = params or TorchQuantileParams()
        if self.config.head not in HEADS:
            raise ValueError(f"torch head {self.config.head!r} is unknown; use one of {HEADS}")
        if self.config.quantile_mode not in QUANTILE_MODES:
            raise ValueError(
                f"quantile_mode {self.config.quantile_mode!r} is unknown; "
                f"use one of {tuple(QUANTILE_MODES)}"
            )
        self.nets: list[DemandNet] = []
        self.item_vocab: dict[int, int] = {}
        self.category_vocab: dict[int, int] = {}
        self.checkpoint_root: Path | None = None
        self.console: Console | None = None
        self.last_train: TrainResult | None = None
        self.trainer: Callable[..., TrainResult] = train  # torch_ddp.train_ddp on several ranks

    @property
    def params(self) -> dict[str, Any]:
        return asdict(self.config)

    @property
    def net(self) -> DemandNet | None:
        """The first network of the ensemble (None before fit)."""
        return self.nets[0] if self.nets else None

    @property
    def device(self) -> str:
        return select_device(self.config.train.device).type

    def fit(self, history: pd.DataFrame, stop_after_epochs: int | None = None) -> TorchQuantile:
        panel = to_panel(history)
        if panel.n_days < self.config.train.min_origin + 2:
            raise ValueError(
                f"{panel.n_days} days of history are too few to train the torch model: "
                f"it needs at least {self.config.train.min_origin + 2}"
            )
        self.item_vocab = _vocab(panel.item_ids)
        categories = panel.category_id[~np.isnan(panel.category_id)].astype(np.int64)
        self.category_vocab = _vocab(categories)
        tensors = panel_tensors(
            panel,
            self.config.horizon,
            None,
            self.item_vocab,
            self.category_vocab,
            first_origin=self.config.train.min_origin,
        )
        rows, origins = training_samples(
            tensors, self.config.train.min_origin, self.config.train.origin_stride
        )
        net_config = self.config.net_config(len(self.item_vocab) + 1, len(self.category_vocab) + 1)
        folder = None
        if self.checkpoint_root is not None:
            key = fingerprint(history, {**self.params, "train": resumable(self.config.train)})
            folder = self.checkpoint_root / f"fit-{panel.day(panel.n_days - 1).date()}-{key}"
        self.nets, results = [], []
        for member in range(self.config.n_seeds):
            train_config = replace(self.config.train, seed=self.config.train.seed + 1000 * member)
            torch.manual_seed(train_config.seed)
            net = DemandNet(net_config)
            results.append(
                self.trainer(
                    net,
                    tensors,
                    rows,
                    origins,
                    train_config,
                    checkpoint_dir=None if folder is None else folder / f"member-{member}",
                    stop_after_epochs=stop_after_epochs,
                    console=self.console,
                )
            )
            self.nets.append(net.to("cpu"))
        self.last_train = combine(results)
        return self

    def predict(
        self,
        history: pd.DataFrame,
        as_of: dt.date,
        horizon: int = 28,
        future: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        if not self.nets:
            raise RuntimeError("fit the model before predicting")
        if horizon > self.config.horizon:
            raise ValueError(f"trained for {self.config.horizon} days, asked for {horizon}")
        seen = history_until(history, as_of)
        panel = to_panel(seen, end=as_of)
        trained_h = self.config.horizon
        if future is None:
            future = known_future(seen, as_of, trained_h)
        planned = (
            future.set_index(["item_id", "horizon"])["discount_pct"]
            .reindex(pd.MultiIndex.from_product([panel.item_ids, range(1, trained_h + 1)]))
            .fillna(0.0)
            .to_numpy(dtype="float64")
            .reshape(len(panel.item_ids), trained_h)
        )
        tensors = panel_tensors(
            panel,
            trained_h,
            planned,
            self.item_vocab,
            self.category_vocab,
            first_origin=panel.column(as_of),
        )
        rows = torch.arange(len(panel.item_ids))
        origins = torch.full_like(rows, panel.column(as_of))
        batch = tensors.batch(rows, origins, self.net.config.window, trained_h)
        members = []
        for net in self.nets:
            net.eval()
            with torch.no_grad(), autocast(torch.device("cpu")):
                output = net(
                    batch["past"],
                    batch["future"],
                    batch["seasonal"],
                    batch["item"],
                    batch["category"],
                    batch["static"],
                ).float()
            if net.config.head == "negbin":
                quantiles = negbin_quantiles(output, QUANTILES, self.config.quantile_mode)
                # the median stays a count: the discrete median minimises absolute error
                quantiles[..., 1] = negbin_quantiles(output, (0.5,))[..., 0]
                output = quantiles
            members.append(output)
        quantiles = torch.stack(members).mean(0).numpy()[:, :horizon].astype("float64")
        return forecast_frame(panel.item_ids, as_of, quantiles)

    def save(self, directory: Path) -> list[Path]:
        if not self.nets:
            raise RuntimeError("fit the model before saving it")
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / "model.pt"
        torch.save([net.state_dict() for net in self.nets], weights)
        config_path = directory / "model_config.json"
        payload = {
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "net": asdict(self.net.config),
            "item_vocab": {str(k): v for k, v in self.item_vocab.items()},
            "category_vocab": {str(k): v for k, v in self.category_vocab.items()},
            "training": None if self.last_train is None else asdict(self.last_train),
            "torch_version": torch.__version__,
        }
        config_path.write_text(json.dumps(payload, indent=2))
        return [weights, config_path]

    @classmethod
    def load(cls, directory: Path) -> TorchQuantile:
        """Rebuild a saved forecaster from its artifact folder."""
        payload = json.loads((directory / "model_config.json").read_text())
        params = dict(payload["params"])
        params["train"] = TrainConfig(**params["train"])
        model = cls(TorchQuantileParams(**params))
        model.item_vocab = {int(k): v for k, v in payload["item_vocab"].items()}
        model.category_vocab = {int(k): v for k, v in payload["category_vocab"].items()}
        payload["net"].setdefault("decoder_norm", True)  # saved before the option existed
        states = torch.load(directory / "model.pt", map_location="cpu")
        model.nets = []
        for state in states if isinstance(states, list) else [states]:
            net = DemandNet(NetConfig(**payload["net"]))
            net.load_state_dict(state)
            model.nets.append(net.eval())
        return model
