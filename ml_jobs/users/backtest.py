"""Temporal backtest of every user model: fit on cutoffs whose labels were known, score the
next cutoff, repeat for the newest `n_cutoffs` labelled cutoffs. Never a random user split.

For a test cutoff C the models train on the `train_cutoffs` newest cutoffs T with
T + window <= C (their labels were complete by C), and are scored on all users active
before C. Scores are split by segment: `all`, `returning` (a purchase before C) and
`cold_start` (no purchase before C).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ml_jobs.users import baselines
from ml_jobs.users.baselines import XGBoostPropensity, XGBoostPropensityParams
from ml_jobs.users.calibration import held_out_cutoffs
from ml_jobs.users.data import Catalog, EventLog, ever_purchased
from ml_jobs.users.examples import Examples
from ml_jobs.users.metrics import (
    category_metrics,
    expected_calibration_error,
    propensity_metrics,
    ranked_metrics,
)
from ml_jobs.users.ranking import Ranked, batches
from ml_jobs.users.train import TrainConfig, TrainedSequenceModel, fit

# Model name -> (prediction product, promotion metric: lower is better).
PROPENSITY, AFFINITY, RECOMMENDATIONS = (
    "user_purchase_propensity",
    "user_category_affinity",
    "user_item_recommendations",
)
MODELS: dict[str, tuple[str, str]] = {
    "xgboost_propensity": (PROPENSITY, "log_loss"),
    "torch_sequence_propensity": (PROPENSITY, "log_loss"),
    "category_frequency": (AFFINITY, "category_nll"),
    "torch_sequence_affinity": (AFFINITY, "category_nll"),
    "popularity": (RECOMMENDATIONS, "miss_rate_at_10"),
    "repurchase": (RECOMMENDATIONS, "miss_rate_at_10"),
    "cooccurrence": (RECOMMENDATIONS, "miss_rate_at_10"),
    "torch_sequence_recommendations": (RECOMMENDATIONS, "miss_rate_at_10"),
}
METRIC_COLUMNS = ["model_name", "cutoff", "horizon", "segment", "metric", "value"]


@dataclass(frozen=True)
class UserModelsConfig:
    window_days: int = 7
    n_cutoffs: int = 2  # backtest cutoffs
    train_cutoffs: int = 16  # labelled cutoffs each fit trains on
    calibration_cutoffs: int = 0  # newest of those held out to calibrate on (0: none)
    max_len: int = 40  # events per sequence
    top_k: int = 10  # recommendations written per user
    exclude_repurchase: bool = False  # drop items the user already bought from recommendations
    use_torch: bool = True
    # Input assembly: Feast rows per point-in-time retrieval, and the most labelled rows
    # loaded (past it, a fixed share of users is kept on every cutoff; see job.sample_users).
    feature_batch_rows: int = 100_000
    max_labelled_rows: int = 2_000_000
    xgboost: XGBoostPropensityParams = field(default_factory=XGBoostPropensityParams)
    torch: TrainConfig = field(default_factory=TrainConfig)

    def with_threads(self, threads: int) -> UserModelsConfig:
        """This config with torch and XGBoost both on `threads` CPU threads."""
        return replace(
            self,
            torch=replace(self.torch, threads=threads),
            xgboost=replace(self.xgboost, nthread=threads),
        )


@dataclass
class Fitted:
    xgb: XGBoostPropensity | None
    seq: TrainedSequenceModel | None


@dataclass
class ModelOutputs:
    """Every model's scores for one set of rows at one cutoff."""

    propensity: dict[str, tuple[np.ndarray, np.ndarray]]  # model -> (p, expected spend)
    affinity: dict[str, np.ndarray]  # model -> (n, C) distribution
    ranking: dict[str, Ranked]  # model -> each row's best items, see ranking.Ranked
    uncalibrated: dict[str, np.ndarray] = field(default_factory=dict)  # model -> p before Platt


def training_cutoffs(labelled: list[dt.date], test: dt.date, window: int, keep: int) -> list:
    known = [c for c in labelled if c + dt.timedelta(days=window) <= test]
    return known[-keep:]


def fit_models(
    train: Examples, feature_names: list[str], catalog: Catalog, config: UserModelsConfig, log
) -> Fitted:
    held = held_out_cutoffs(train.cutoff_ts, config.calibration_cutoffs)
    xgb = XGBoostPropensity(config.xgboost, feature_names).fit(
        train.features, train.purchased, train.spend, calibrate_on=held
    )
    seq = None
    if config.use_torch:
        seq = fit(
            train,
            feature_names,
            catalog.item_category[1:],
            catalog.n_categories,
            config.torch,
            log,
            calibrate_on=held,
        )
    return Fitted(xgb, seq)


def score_models(
    fitted: Fitted,
    ex: Examples,
    events: EventLog,
    catalog: Catalog,
    cutoff: pd.Timestamp,
    config: UserModelsConfig,
    only: set[str] | None = None,
) -> ModelOutputs:
    """Scores of every model (or the models named in `only`) for rows `ex`, which must all
    share `cutoff`. Training-time write-back and daily champion scoring both come here, so a
    champion scores the same way in both."""

    def wanted(name: str) -> bool:
        return only is None or name in only

    users = ex.user_id
    propensity: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    affinity: dict[str, np.ndarray] = {}
    ranking: dict[str, Ranked] = {}
    uncalibrated: dict[str, np.ndarray] = {}
    if fitted.xgb is not None and wanted("xgboost_propensity"):
        propensity["xgboost_propensity"] = fitted.xgb.predict(ex.features)
        uncalibrated["xgboost_propensity"] = fitted.xgb.predict_uncalibrated(ex.features)
    if wanted("category_frequency"):
        affinity["category_frequency"] = baselines.category_frequency(
            events, users, cutoff, catalog.n_categories
        )
    depth = max(config.top_k, 12)

    def ranked(scores: np.ndarray, mask: np.ndarray) -> Ranked:
        if config.exclude_repurchase:
            scores = baselines.exclude_purchased(scores, events, users[mask], cutoff)
        return Ranked.from_scores(scores, depth)

    for name in baselines.RANKING_BASELINES:
        if wanted(name) and not (config.exclude_repurchase and name == "repurchase"):
            scorer = baselines.ranking_scorer(name, events, cutoff, catalog.n_items)
            parts = [ranked(scorer(users[m]), m) for m in batches(len(users))]
            ranking[name] = Ranked.concat(parts, depth)
    seq_names = {name for name in MODELS if name.startswith("torch_sequence")}
    if fitted.seq is not None and any(wanted(name) for name in seq_names):
        # A batch of users at a time: item scores are (users, items) before the top columns.
        parts, ranks = [], []
        for m in batches(len(users)):
            scores = fitted.seq.score(ex.subset(m))
            ranks.append(ranked(scores.item_scores, m))
            scores.item_scores = np.zeros((len(scores.p_purchase), 0), dtype=np.float32)
            parts.append(scores)
        if wanted("torch_sequence_propensity"):
            p = np.concatenate([s.p_purchase for s in parts])
            spend = np.concatenate([s.expected_spend for s in parts])
            propensity["torch_sequence_propensity"] = (p, spend)
            uncalibrated["torch_sequence_propensity"] = np.concatenate(
                [s.p_uncalibrated for s in parts if s.p_uncalibrated is not None]
            )
        if wanted("torch_sequence_affinity"):
            affinity["torch_sequence_affinity"] = np.concatenate([s.category_probs for s in parts])
        if wanted("torch_sequence_recommendations"):
            ranking["torch_sequence_recommendations"] = Ranked.concat(ranks, depth)
    return ModelOutputs(propensity, affinity, ranking, uncalibrated)


def _rows(model: str, cutoff: dt.date, segment: str, values: dict[str, float]) -> list[dict]:
    return [
        {
            "model_name": model,
            "cutoff": cutoff,
            "horizon": None,
            "segment": segment,
            "metric": k,
            "value": float(v),
        }
        for k, v in values.items()
    ]


def evaluate(out: ModelOutputs, ex: Examples, segments: dict[str, np.ndarray], cutoff: dt.date):
    """Long metric rows of every model and segment at one cutoff."""
    rows: list[dict] = []
    for segment, mask in segments.items():
        if not mask.any():
            continue
        y = ex.purchased[mask]
        for name, (p, spend) in out.propensity.items():
            values = propensity_metrics(y, p[mask])
            values["spend_mae"] = float(np.mean(np.abs(spend[mask] - ex.spend[mask])))
            if name in out.uncalibrated:
                raw = out.uncalibrated[name][mask]
                values["ece_uncalibrated"] = expected_calibration_error(y, raw)
            rows += _rows(name, cutoff, segment, values)
        for name, probs in out.affinity.items():
            rows += _rows(
                name, cutoff, segment, category_metrics(probs[mask], ex.category_counts[mask])
            )
        for name, ranked in out.ranking.items():
            values = ranked_metrics(ranked.items[mask], ex.item_counts[mask], k=10)
            values["miss_rate_at_10"] = 1.0 - values["hr_at_10"]
            rows += _rows(name, cutoff, segment, values)
    return rows


def segments_for(ex: Examples, events: EventLog, cutoff: pd.Timestamp, n_items: int) -> dict:
    returning = ever_purchased(events, ex.user_id, cutoff)
    return {"all": np.ones(len(ex), dtype=bool), "returning": returning, "cold_start": ~returning}


def run_backtest(
    examples: Examples,
    labelled: list[dt.date],
    test_cutoffs: list[dt.date],
    feature_names: list[str],
    events: EventLog,
    catalog: Catalog,
    config: UserModelsConfig,
    log=print,
    keep: dict[dt.date, ModelOutputs] | None = None,
) -> pd.DataFrame:
    """Long metric rows of every model, segment and test cutoff; with `keep`, each cutoff's
    scores are stored there too."""
    rows: list[dict] = []
    dates = examples.cutoff_ts.dt.date.to_numpy()
    for test in test_cutoffs:
        train_days = training_cutoffs(labelled, test, config.window_days, config.train_cutoffs)
        if not train_days:
            log(f"backtest {test}: no labelled cutoffs before it, skipped")
            continue
        train = examples.subset(np.isin(dates, train_days))
        held = examples.subset(dates == test)
        log(
            f"backtest {test}: train {len(train)} rows on {len(train_days)} cutoffs, "
            f"test {len(held)}"
        )
        fitted = fit_models(train, feature_names, catalog, config, log)
        cutoff_ts = pd.Timestamp(test).tz_localize("UTC")
        out = score_models(fitted, held, events, catalog, cutoff_ts, config)
        if keep is not None:
            keep[test] = out
        rows += evaluate(out, held, segments_for(held, events, cutoff_ts, catalog.n_items), test)
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def summarize(metrics: pd.DataFrame, segment: str = "all") -> pd.DataFrame:
    """Mean over cutoffs per model and metric (one row per model, one column per metric)."""
    if metrics.empty:
        return pd.DataFrame()
    part = metrics[metrics["segment"] == segment]
    return part.pivot_table(index="model_name", columns="metric", values="value", aggfunc="mean")
