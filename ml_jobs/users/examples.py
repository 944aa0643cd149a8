"""Model-ready examples: one row per (user, cutoff) with its sequence, static features and,
when the window has passed, its targets. Shared by training, backtests and batch scoring."""

from __future__ import annotations

from dataclasses import dataclass, fields

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

# Rows whose per-row arrays are built at a time (see build_examples).
CHUNK_ROWS = 200_000


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
    """Model inputs of n (user, cutoff) rows. The sequence model's inputs (`seq`, `user_items`,
    `activity`, `category_share`, `item_signals`) are None when built with
    `torch_inputs=False`: XGBoost and the baselines read only the features and targets."""

    user_id: np.ndarray  # (n,)
    cutoff_ts: pd.Series  # (n,) UTC timestamps
    seq: Sequences | None
    features: pd.DataFrame  # raw Feast features, for XGBoost and the scaler
    item_signals: np.ndarray | None  # (n_cutoffs, n_items, K) float32, see signals.item_signals
    cutoff_index: np.ndarray  # (n,) row of `item_signals`
    user_items: sp.csr_matrix | None  # sparse (n, 2 * n_items) float32, see user_item_history
    activity: np.ndarray | None  # (n, A) float32, see signals.activity
    category_share: np.ndarray | None  # (n, 2, n_categories) float32, see signals
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
            seq=None if s is None else Sequences(*(pick(a) for a in _fields(s))),
            features=self.features[mask].reset_index(drop=True),
            item_signals=self.item_signals,
            cutoff_index=self.cutoff_index[mask],
            user_items=pick(self.user_items),
            activity=pick(self.activity),
            category_share=pick(self.category_share),
            purchased=pick(self.purchased),
            spend=pick(self.spend),
            item_counts=pick(self.item_counts),
            category_counts=pick(self.category_counts),
        )


def _fields(s: Sequences) -> list[np.ndarray]:
    return [getattr(s, f.name) for f in fields(Sequences)]


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _chunk_arrays(
    events: EventLog,
    catalog: Catalog,
    users: np.ndarray,
    cutoff_ts: pd.Series,
    max_len: int,
    window_days: int,
    with_targets: bool,
    torch_inputs: bool,
) -> dict[str, object]:
    """The per-row arrays of one chunk of rows, by Examples field (`seq.<name>` for Sequences)."""
    out: dict[str, object] = {}
    if torch_inputs:
        seq = sequences(events, users, cutoff_ts, max_len)
        out.update({f"seq.{f.name}": getattr(seq, f.name) for f in fields(Sequences)})
        del seq
        cut = signals.cutoff_seconds(events, len(users), cutoff_ts)
        out["user_items"] = user_item_history(events, users, cutoff_ts, catalog.n_items)
        out["activity"] = signals.activity(events, users, cut)
        out["category_share"] = signals.category_share(events, users, cut, catalog.n_categories)
    if with_targets:
        items, cats = window_targets(
            events, users, cutoff_ts, window_days, catalog.n_items, catalog.n_categories
        )
        out["item_counts"], out["category_counts"] = items, cats
    return out


def _row_chunks(n: int, chunk_rows: int) -> list[slice]:
    """Consecutive row ranges of at most `chunk_rows` rows (one empty range for no rows)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    return [slice(lo, min(lo + chunk_rows, n)) for lo in range(0, n, chunk_rows)] or [slice(0, 0)]


def _concat(parts: list) -> object:
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0].tocsr()
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def build_examples(
    rows: pd.DataFrame,
    features: pd.DataFrame,
    events: EventLog,
    catalog: Catalog,
    max_len: int,
    window_days: int,
    with_targets: bool,
    torch_inputs: bool = True,
    chunk_rows: int = CHUNK_ROWS,
) -> Examples:
    """`rows` holds user_id, cutoff_ts (and purchased, spend when `with_targets`); `features`
    is the Feast frame for the same rows in the same order.

    The per-row arrays are built for at most `chunk_rows` rows at a time, so the scratch memory
    of walking every row's event history stays bounded by one chunk; each field is then put
    together in turn, its chunks freed as it goes. Without `torch_inputs` only the features and
    targets are built (see Examples)."""
    if len(rows) != len(features):
        raise ValueError(f"{len(rows)} rows but {len(features)} feature rows")
    users = rows["user_id"].to_numpy(np.int64)
    cutoff_ts = pd.to_datetime(rows["cutoff_ts"], utc=True).reset_index(drop=True)
    unique_cutoffs, cutoff_index = np.unique(cutoff_ts.to_numpy(), return_inverse=True)
    cutoff_index = np.asarray(cutoff_index).reshape(-1)
    item_signals = None
    if torch_inputs:
        stamps = [_utc(pd.Timestamp(c)) for c in unique_cutoffs]
        item_signals = np.stack(
            [signals.item_signals(events, events.to_seconds(c), catalog.n_items) for c in stamps]
        )
    chunks = [
        _chunk_arrays(
            events,
            catalog,
            users[part],
            cutoff_ts.iloc[part].reset_index(drop=True),
            max_len,
            window_days,
            with_targets,
            torch_inputs,
        )
        for part in _row_chunks(len(users), chunk_rows)
    ]
    built: dict[str, object] = {}
    for key in list(chunks[0]):
        built[key] = _concat([chunk.pop(key) for chunk in chunks])  # parts freed as they go
    seq = None
    if torch_inputs:
        seq = Sequences(*(built.pop(f"seq.{f.name}") for f in fields(Sequences)))
    targets: dict[str, object] = {}
    if with_targets:
        targets = {
            "purchased": rows["purchased"].to_numpy(np.float32),
            "spend": rows["spend"].to_numpy(np.float32),
            "item_counts": built.pop("item_counts", None),
            "category_counts": built.pop("category_counts", None),
        }
    return Examples(
        user_id=users,
        cutoff_ts=cutoff_ts,
        seq=seq,
        features=features.reset_index(drop=True),
        item_signals=item_signals,
        cutoff_index=cutoff_index,
        user_items=built.pop("user_items", None),  # type: ignore[arg-type]
        activity=built.pop("activity", None),  # type: ignore[arg-type]
        category_share=built.pop("category_share", None),  # type: ignore[arg-type]
        **targets,  # type: ignore[arg-type]
    )
