"""Lay a demand Panel out as tensors for the torch model: windows of (item, forecast origin).

`PanelTensors` holds the whole history once (items x days x channels) plus the known future
covariates for every day up to H days past the data; `batch` cuts the windows of a set of
(item, origin) pairs out of it by indexing, so no window is ever materialised twice.

Censored demand: a stock-out day (and a day before the item's launch) has `observed = 0`, its
units are 0 in the input and it is masked from the loss; never a zero of demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ml_jobs.demand.data import Panel
from ml_jobs.demand.origin import origin_features

FUTURE_FEATURES = (
    "discount",
    "log_price_factor",
    "is_promo",
    *(f"dow_{d}" for d in range(7)),
    "doy_sin",
    "doy_cos",
)
SEASONAL_WEEKS = 4  # weeks averaged by the same-weekday input
# Summaries of each item's history at the origin (the XGBoost baseline's origin features, units
# divided by its level): the network gets them ready-made instead of relearning each average.
ORIGIN_FEATURES = (
    "mean_7",
    "mean_28",
    "std_7",
    "std_28",
    "mean_28_no_promo",
    "item_mean",
    "views_trend",
    "carts_trend",
    "promo_share_28",
    "zero_share_90",
    "stockout_share_28",
)
ORIGIN_SCALED = ("mean_7", "mean_28", "std_7", "std_28", "mean_28_no_promo", "item_mean")
STATIC_FEATURES = ("log_age", "past_window", "log_long_level", *ORIGIN_FEATURES)


@dataclass
class PanelTensors:
    """History and known future as dense tensors; column c of `past` is day `start + c`."""

    past: torch.Tensor  # (N, T, 6) units, observed, views, carts, searches, discount
    known: torch.Tensor  # (N, T + H, F) FUTURE_FEATURES for every day
    item_index: torch.Tensor  # (N,) embedding row of each item (0 = unseen)
    category_index: torch.Tensor  # (N,)
    first_day: torch.Tensor  # (N,)
    cum_units: torch.Tensor  # (N, T) running sum of observed units
    cum_observed: torch.Tensor  # (N, T) running count of observed days
    origin_stats: torch.Tensor  # (N, T, len(ORIGIN_FEATURES)) as known at the end of each day
    n_days: int

    def batch(
        self, rows: torch.Tensor, origins: torch.Tensor, window: int, horizon: int
    ) -> dict[str, torch.Tensor]:
        """Inputs and targets of the samples (item row, origin column)."""
        steps = torch.arange(-window + 1, 1, device=origins.device)
        cols = origins[:, None] + steps[None, :]  # (B, L)
        inside = (cols >= 0).float()[..., None]
        past = self.past[rows[:, None], cols.clamp(min=0)] * inside
        ahead = origins[:, None] + torch.arange(1, horizon + 1, device=origins.device)[None, :]
        future = self.known[rows[:, None], ahead.clamp(max=self.known.shape[1] - 1)]
        in_data = ahead < self.n_days
        target_cols = ahead.clamp(max=self.n_days - 1)
        target = self.past[rows[:, None], target_cols, 0] * in_data
        mask = self.past[rows[:, None], target_cols, 1] * in_data
        # same weekday over the last SEASONAL_WEEKS weeks seen at the origin, per target day
        h = torch.arange(1, horizon + 1, device=origins.device)
        latest = origins[:, None] + h[None, :] - 7 * torch.div(h + 6, 7, rounding_mode="floor")
        weeks = latest[..., None] - 7 * torch.arange(SEASONAL_WEEKS, device=origins.device)
        ok = (weeks >= 0).float()
        picked = self.past[rows[:, None, None], weeks.clamp(min=0)]  # (B, H, W, 6)
        seen = picked[..., 1] * ok
        seasonal = (picked[..., 0] * seen).sum(-1) / seen.sum(-1).clamp(min=1.0)
        age = (origins - self.first_day[rows]).clamp(min=0).float()
        long_level = self.cum_units[rows, origins] / self.cum_observed[rows, origins].clamp(min=1)
        static = torch.cat(
            [
                torch.stack(
                    [torch.log1p(age) / 5.0, (age >= window).float(), torch.log1p(long_level)],
                    dim=1,
                ),
                self.origin_stats[rows, origins],
            ],
            dim=1,
        )
        return {
            "past": past,
            "future": future,
            "seasonal": seasonal,
            "item": self.item_index[rows],
            "category": self.category_index[rows],
            "static": static,
            "target": target,
            "mask": mask,
        }


def _known(discount: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """(N, D, F) FUTURE_FEATURES from a discount grid (percent) and the days' dates."""
    n, d = discount.shape
    fraction = np.clip(np.nan_to_num(discount, nan=0.0) / 100.0, 0.0, 0.95)
    dow = np.eye(7)[dates.dayofweek.to_numpy()]  # (D, 7)
    angle = 2 * np.pi * dates.dayofyear.to_numpy() / 365.25
    calendar = np.concatenate([dow, np.sin(angle)[:, None], np.cos(angle)[:, None]], axis=1)
    own = np.stack([fraction, -np.log1p(-fraction), (fraction > 0).astype(float)], axis=-1)
    return np.concatenate([own, np.broadcast_to(calendar, (n, d, calendar.shape[1]))], axis=-1)


def panel_tensors(
    panel: Panel,
    horizon: int,
    future_discount: np.ndarray | None,
    item_vocab: dict[int, int],
    category_vocab: dict[int, int],
    first_origin: int = 0,
) -> PanelTensors:
    """Tensors of a Panel; `future_discount` (N, H) is the planned discount after its last day.

    Origin summaries are computed from `first_origin` on (prediction needs only the last day).
    """
    units = panel.units
    alive = np.arange(panel.n_days)[None, :] >= panel.first_day[:, None]
    observed = (~np.isnan(units)) & alive
    past = np.stack(
        [
            np.where(observed, units, 0.0),
            observed.astype(float),
            np.nan_to_num(panel.views, nan=0.0),
            np.nan_to_num(panel.carts, nan=0.0),
            np.nan_to_num(panel.searches, nan=0.0),
            np.clip(np.nan_to_num(panel.discount_pct, nan=0.0) / 100.0, 0.0, 0.95),
        ],
        axis=-1,
    )
    ahead = np.zeros((len(units), horizon)) if future_discount is None else future_discount
    discount = np.concatenate([np.nan_to_num(panel.discount_pct, nan=0.0), ahead], axis=1)
    dates = pd.date_range(panel.start, periods=panel.n_days + horizon, freq=f"{panel.step_days}D")
    categories = np.nan_to_num(panel.category_id, nan=-1).astype(np.int64)
    return PanelTensors(
        past=torch.tensor(past, dtype=torch.float32),
        known=torch.tensor(_known(discount, dates), dtype=torch.float32),
        item_index=torch.tensor([item_vocab.get(int(i), 0) for i in panel.item_ids]),
        category_index=torch.tensor([category_vocab.get(int(c), 0) for c in categories]),
        first_day=torch.tensor(panel.first_day, dtype=torch.int64),
        n_days=panel.n_days,
        cum_units=torch.tensor(np.cumsum(past[..., 0], axis=1), dtype=torch.float32),
        cum_observed=torch.tensor(np.cumsum(past[..., 1], axis=1), dtype=torch.float32),
        origin_stats=torch.tensor(origin_stats(panel, first_origin), dtype=torch.float32),
    )


def origin_stats(panel: Panel, first_origin: int = 0) -> np.ndarray:
    """(N, T, K) ORIGIN_FEATURES per item at every origin from `first_origin` on (else 0)."""
    out = np.zeros((len(panel.item_ids), panel.n_days, len(ORIGIN_FEATURES)))
    for origin in range(max(first_origin, 0), panel.n_days):
        stats = origin_features(panel, origin)
        for k, name in enumerate(ORIGIN_FEATURES):
            value = stats[name] / stats["scale"] if name in ORIGIN_SCALED else stats[name]
            out[:, origin, k] = np.clip(np.nan_to_num(value, nan=0.0), -10.0, 10.0)
    return out


def training_samples(
    tensors: PanelTensors, min_origin: int, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, origins) of every item at every origin with a target inside the data.

    An origin counts once the item has launched; the newest origin is the day before the last.
    """
    last = tensors.n_days - 2
    origins = torch.arange(last, min_origin - 1, -stride)
    rows = torch.arange(len(tensors.first_day))
    r, o = torch.meshgrid(rows, origins, indexing="ij")
    keep = o >= tensors.first_day[r]
    return r[keep], o[keep]
