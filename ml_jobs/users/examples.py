"""Model-ready examples: one row per (user, cutoff) with its sequence, static features and,
when the window has passed, its targets. Shared by training, backtests and batch scoring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml_jobs.users import signals
from ml_jobs.users.data import (
    Catalog,
    EventLog,
    Sequences,
    sequences,
    user_item_history,
    window_targets,
)


@dataclass(frozen=True)
class StaticScaler:
    """log1p, then standardise each Feast feature; a missing value becomes 0 plus a flag."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, features: pd.DataFrame, names: list[str]) -> StaticScaler:
        x = np.log1p(np.maximum(features[names].to_numpy(np.float64), 0.0))
        mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(len(names))
        std = np.nan_to_num(np.nanstd(x, axis=0), nan=1.0) if len(x) else np.ones(len(names))
        return cls(tuple(names), tuple(mean.tolist()), tuple(np.maximum(std, 1e-6).tolist()))

    @property
    def width(self) -> int:
        return 2 * len(self.names)

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.names if c not in features.columns]
        if missing:
            raise ValueError(f"static features lack columns {missing}")
        x = np.log1p(np.maximum(features[list(self.names)].to_numpy(np.float64), 0.0))
        absent = np.isnan(x)
        z = (x - np.array(self.mean)) / np.array(self.std)
        return np.concatenate([np.where(absent, 0.0, z), absent], axis=1).astype(np.float32)


@dataclass(frozen=True)
class ArrayScaler:
    """Standardise the columns of a float matrix (the activity signals)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> ArrayScaler:
        if len(x) == 0:
            return cls(tuple([0.0] * x.shape[1]), tuple([1.0] * x.shape[1]))
        std = x.std(axis=0)
        # A column (nearly) constant in training carries no signal: leave it unscaled rather
        # than blow a later non-constant value up by 1/std.
        std = np.where(std < 1e-3, 1.0, std)
        return cls(tuple(x.mean(axis=0).tolist()), tuple(std.tolist()))

    def transform(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} columns, got {x.shape[1]}")
        z = (x - np.array(self.mean)) / np.array(self.std)
        return np.clip(z, -8.0, 8.0).astype(np.float32)


@dataclass(frozen=True)
class Examples:
    user_id: np.ndarray  # (n,)
    cutoff_ts: pd.Series  # (n,) UTC timestamps
    seq: Sequences
    features: pd.DataFrame  # raw Feast features, for XGBoost and the scaler
    item_signals: np.ndarray  # (n_cutoffs, n_items, K) float32, see signals.item_signals
    cutoff_index: np.ndarray  # (n,) row of `item_signals`
    user_items: sp.csr_matrix  # sparse (n, 2 * n_items) float32, see data.user_item_history
    activity: np.ndarray  # (n, A) float32, see signals.activity
    category_share: np.ndarray  # (n, 2, n_categories) float32, see signals.category_share
    purchased: np.ndarray | None = None  # (n,) float32
    spend: np.ndarray | None = None  # (n,) float32
    item_counts: sp.csr_matrix | None = None  # sparse (n, n_items) float32
    category_counts: np.ndarray | None = None  # (n, n_categories) float32

    def __len__(self) -> int:
        return len(self.user_id)

    def subset(self, mask: np.ndarray) -> Examples:
        def pick(a):
            return None if a is None else a[mask]

        s = self.seq
        return Examples(
            user_id=self.user_id[mask],
            cutoff_ts=self.cutoff_ts[mask].reset_index(drop=True),
            seq=Sequences(
                s.item[mask],
                s.category[mask],
                s.kind[mask],
                s.log_gap_hours[mask],
                s.log_price[mask],
                s.history_events[mask],
                s.history[mask],
            ),
            features=self.features[mask].reset_index(drop=True),
            item_signals=self.item_signals,
            cutoff_index=self.cutoff_index[mask],
            user_items=self.user_items[mask],
            activity=self.activity[mask],
            category_share=self.category_share[mask],
            purchased=pick(self.purchased),
            spend=pick(self.spend),
            item_counts=pick(self.item_counts),
            category_counts=pick(self.category_counts),
        )


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def build_examples(
    rows: pd.DataFrame,
    features: pd.DataFrame,
    events: EventLog,
    catalog: Catalog,
    max_len: int,
    window_days: int,
    with_targets: bool,
) -> Examples:
    """`rows` holds user_id, cutoff_ts (and purchased, spend when `with_targets`); `features`
    is the Feast frame for the same rows in the same order."""
    if len(rows) != len(features):
        raise ValueError(f"{len(rows)} rows but {len(features)} feature rows")
    users = rows["user_id"].to_numpy(np.int64)
    cutoff_ts = pd.to_datetime(rows["cutoff_ts"], utc=True).reset_index(drop=True)
    unique_cutoffs, cutoff_index = np.unique(cutoff_ts.to_numpy(), return_inverse=True)
    stamps = [_utc(pd.Timestamp(c)) for c in unique_cutoffs]
    item_signals = np.stack(
        [signals.item_signals(events, events.to_seconds(c), catalog.n_items) for c in stamps]
    )
    seq = sequences(events, users, cutoff_ts, max_len)
    cut = signals.cutoff_seconds(events, len(users), cutoff_ts)
    targets: dict[str, np.ndarray] = {}
    if with_targets:
        items, cats = window_targets(
            events, users, cutoff_ts, window_days, catalog.n_items, catalog.n_categories
        )
        targets = {
            "purchased": rows["purchased"].to_numpy(np.float32),
            "spend": rows["spend"].to_numpy(np.float32),
            "item_counts": items,
            "category_counts": cats,
        }
    return Examples(
        user_id=users,
        cutoff_ts=cutoff_ts,
        seq=seq,
        features=features.reset_index(drop=True),
        item_signals=item_signals,
        cutoff_index=np.asarray(cutoff_index).reshape(-1),
        user_items=user_item_history(events, users, cutoff_ts, catalog.n_items),
        activity=signals.activity(events, users, cut),
        category_share=signals.category_share(events, users, cut, catalog.n_categories),
        **targets,
    )
