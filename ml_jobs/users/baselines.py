"""Baselines the user models must beat, kept forever.

- `XGBoostPropensity`: gradient-boosted trees on the `propensity_v1` Feast features, one
  classifier for P(purchase within the window) and one Tweedie regressor for spend. Like the
  sequence model, the classifier can hold out its newest training cutoff to fit a Platt
  scaler on (ml_jobs.users.calibration).
- Ranking: `popularity` (purchases in the last 28 days), `repurchase` (the user's own past
  purchases, most bought first, popularity after) and `cooccurrence` (items that followed the
  user's last items in everyone's event streams). Each returns a full score matrix over items.
- `category_frequency`: the user's category shares over the last 90 days, smoothed toward the
  shop's shares, as the affinity baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xgboost as xgb

from ml_jobs.users.calibration import Platt
from ml_jobs.users.data import EventLog, item_popularity, purchased_before

RANKING_BASELINES = ("popularity", "repurchase", "cooccurrence")


@dataclass(frozen=True)
class XGBoostPropensityParams:
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    seed: int = 0
    nthread: int = 1


class XGBoostPropensity:
    """P(purchase) and expected spend from static Feast features only."""

    name = "xgboost_propensity"
    kind = "xgboost"
    version = "1"

    def __init__(self, params: XGBoostPropensityParams, feature_names: list[str]) -> None:
        self.params = params
        self.feature_names = list(feature_names)
        self.classifier: xgb.Booster | None = None
        self.regressor: xgb.Booster | None = None
        self.platt: Platt | None = None

    def _booster_params(self, objective: str) -> dict[str, object]:
        p = self.params
        return {
            "objective": objective,
            "max_depth": p.max_depth,
            "eta": p.learning_rate,
            "subsample": p.subsample,
            "colsample_bytree": p.colsample_bytree,
            "min_child_weight": p.min_child_weight,
            "seed": p.seed,
            "nthread": p.nthread,
            "tree_method": "hist",
            "device": "cuda" if _cuda() else "cpu",
        }

    def _x(self, features: pd.DataFrame) -> xgb.DMatrix:
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(f"features lack columns {missing} of {self.feature_names}")
        x = features[self.feature_names].to_numpy(np.float64)
        return xgb.DMatrix(x, feature_names=self.feature_names)

    def fit(
        self,
        features: pd.DataFrame,
        purchased: np.ndarray,
        spend: np.ndarray,
        calibrate_on: np.ndarray | None = None,
    ) -> XGBoostPropensity:
        """With `calibrate_on` (a row mask, the newest cutoff) the classifier trains on the
        other rows and a Platt scaler is fitted on these; the spend model uses every row."""
        rounds = self.params.n_estimators
        y = purchased.astype(np.float64)
        held = calibrate_on if calibrate_on is not None else np.zeros(len(y), dtype=bool)
        split = bool(held.any() and (~held).any())
        train = ~held if split else np.ones(len(y), dtype=bool)
        x = self._x(features[train])
        x.set_label(y[train])
        self.classifier = xgb.train(self._booster_params("binary:logistic"), x, rounds)
        self.platt = None
        if split:
            margin = self.classifier.predict(self._x(features[held]), output_margin=True)
            self.platt = Platt().fit(margin, y[held])
        x = self._x(features)
        x.set_label(np.maximum(spend, 0.0).astype(np.float64))
        self.regressor = xgb.train(self._booster_params("reg:tweedie"), x, rounds)
        return self

    def predict_uncalibrated(self, features: pd.DataFrame) -> np.ndarray:
        """P(purchase) before the Platt scaler."""
        if self.classifier is None:
            raise RuntimeError("fit or load the XGBoost propensity model before predicting")
        return self.classifier.predict(self._x(features))

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(p_purchase, expected_spend) per row."""
        if self.classifier is None or self.regressor is None:
            raise RuntimeError("fit or load the XGBoost propensity model before predicting")
        x = self._x(features)
        if self.platt is None:
            p = self.classifier.predict(x)
        else:
            p = self.platt(self.classifier.predict(x, output_margin=True))
        return p, np.maximum(self.regressor.predict(x), 0.0)

    def save(self, directory: Path) -> None:
        if self.classifier is None or self.regressor is None:
            raise RuntimeError("nothing to save: the model is not fitted")
        directory.mkdir(parents=True, exist_ok=True)
        self.classifier.save_model(directory / "propensity_classifier.json")
        self.regressor.save_model(directory / "spend_regressor.json")
        meta = {
            "params": asdict(self.params),
            "feature_names": self.feature_names,
            "platt": None if self.platt is None else asdict(self.platt),
        }
        (directory / "xgboost_propensity.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> XGBoostPropensity:
        meta = json.loads((directory / "xgboost_propensity.json").read_text())
        model = cls(XGBoostPropensityParams(**meta["params"]), meta["feature_names"])
        model.classifier = xgb.Booster(model_file=str(directory / "propensity_classifier.json"))
        model.regressor = xgb.Booster(model_file=str(directory / "spend_regressor.json"))
        model.platt = Platt(**meta["platt"]) if meta.get("platt") else None
        return model


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _history_rows(events: EventLog, users: np.ndarray, cutoff: pd.Timestamp, days: int):
    """(row, event index) pairs of each user's events in the `days` before `cutoff`."""
    end = events.positions(users, cutoff)
    start = events.positions(users, cutoff - pd.Timedelta(days=days))
    row = np.repeat(np.arange(len(users)), end - start)
    parts = [np.arange(a, b) for a, b in zip(start, end, strict=True)]
    idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return row, idx.astype(np.int64)


def popularity_scores(
    events: EventLog, users: np.ndarray, cutoff: pd.Timestamp, n_items: int
) -> np.ndarray:
    pop = item_popularity(events, cutoff, 28, n_items)
    return np.broadcast_to(np.log1p(pop), (len(users), n_items)).copy()


def repurchase_scores(
    events: EventLog, users: np.ndarray, cutoff: pd.Timestamp, n_items: int
) -> np.ndarray:
    """The user's past purchases first (most often bought first), then popular items."""
    row, idx = _history_rows(events, users, cutoff, 10_000)
    bought = (events.kind[idx] == 5) & (events.item[idx] > 0)
    counts = np.zeros((len(users), n_items))
    np.add.at(counts, (row[bought], events.item[idx[bought]] - 1), 1.0)
    pop = np.log1p(item_popularity(events, cutoff, 28, n_items))
    return counts * 100.0 + pop / (pop.max() + 1.0)


def cooccurrence_follows(
    events: EventLog, cutoff: pd.Timestamp, n_items: int, days: int = 90
) -> sp.csr_matrix:
    """Sparse (n_items, n_items): how often item j followed item i in users' recent streams,
    each row normalised to sum to 1 (pairs seen, not items x items: 50,000 items would take
    20 GB dense)."""
    end = events.to_seconds(cutoff)
    recent = (events.seconds < end) & (events.seconds >= end - days * 86_400) & (events.item > 0)
    u, it = events.user[recent], events.item[recent] - 1
    same = (u[1:] == u[:-1]) & (it[1:] != it[:-1])
    pairs = (np.ones(int(same.sum())), (it[:-1][same], it[1:][same]))
    follows = sp.coo_matrix(pairs, shape=(n_items, n_items)).tocsr()
    follows.sum_duplicates()
    totals = np.maximum(np.asarray(follows.sum(axis=1)).reshape(-1), 1.0)
    follows.data /= np.repeat(totals, np.diff(follows.indptr))
    return follows


def cooccurrence_scores(
    events: EventLog,
    users: np.ndarray,
    cutoff: pd.Timestamp,
    n_items: int,
    last_items: int = 5,
    days: int = 90,
    follows: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Items that followed the user's last `last_items` items in all users' recent streams
    (`follows` from `cooccurrence_follows`, computed here when not given)."""
    if follows is None:
        follows = cooccurrence_follows(events, cutoff, n_items, days)
    row, idx = _history_rows(events, users, cutoff, days)
    has_item = events.item[idx] > 0
    row, idx = row[has_item], idx[has_item]
    # Keep each user's last `last_items` item events, the newest weighted most.
    rank_from_end = np.zeros(len(row), dtype=np.int64)
    if len(row):
        last_of_row = np.r_[row[1:] != row[:-1], True]
        ends = np.nonzero(last_of_row)[0]
        end_of = np.repeat(ends, np.diff(np.r_[-1, ends]))
        rank_from_end = end_of - np.arange(len(row))
    scores = np.zeros((len(users), n_items))
    # Oldest kept event first, as the events are ordered; a user has one event per rank, so
    # each step adds one (rows, items) slice without repeated rows.
    for rank in range(last_items - 1, -1, -1):
        at = rank_from_end == rank
        scores[row[at]] += follows[events.item[idx[at]] - 1].toarray() * 0.7**rank
    pop = np.log1p(item_popularity(events, cutoff, 28, n_items))
    return scores + 1e-3 * pop / (pop.max() + 1.0)


def ranking_scorer(
    name: str, events: EventLog, cutoff: pd.Timestamp, n_items: int
) -> Callable[[np.ndarray], np.ndarray]:
    """users -> (len(users), n_items) scores of one baseline; what every user shares (the
    co-occurrence matrix) is computed once, so users can be scored a batch at a time."""
    if name == "popularity":
        return lambda users: popularity_scores(events, users, cutoff, n_items)
    if name == "repurchase":
        return lambda users: repurchase_scores(events, users, cutoff, n_items)
    if name == "cooccurrence":
        follows = cooccurrence_follows(events, cutoff, n_items)
        return lambda users: cooccurrence_scores(events, users, cutoff, n_items, follows=follows)
    raise ValueError(f"unknown ranking baseline {name!r}; expected one of {RANKING_BASELINES}")


def ranking_baseline(
    name: str, events: EventLog, users: np.ndarray, cutoff: pd.Timestamp, n_items: int
) -> np.ndarray:
    return ranking_scorer(name, events, cutoff, n_items)(users)


def category_frequency(
    events: EventLog,
    users: np.ndarray,
    cutoff: pd.Timestamp,
    n_categories: int,
    days: int = 90,
    prior: float = 2.0,
) -> np.ndarray:
    """(n, n_categories) distribution: the user's category shares smoothed by the shop's."""
    row, idx = _history_rows(events, users, cutoff, days)
    cat = events.category[idx]
    has = cat > 0
    counts = np.zeros((len(users), n_categories))
    np.add.at(counts, (row[has], cat[has] - 1), 1.0)
    shop = counts.sum(axis=0) + 1.0
    shop /= shop.sum()
    smoothed = counts + prior * shop[None, :]
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def exclude_purchased(
    scores: np.ndarray, events: EventLog, users: np.ndarray, cutoff: pd.Timestamp
) -> np.ndarray:
    """Scores with items the user already bought pushed to the bottom (repurchase excluded)."""
    bought = purchased_before(events, users, cutoff, scores.shape[1]).tocoo()
    out = np.array(scores, copy=True)
    out[bought.row, bought.col] = -np.inf
    return out
