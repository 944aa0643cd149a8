"""Rolling-origin backtest of item demand forecasters: never a random split.

Cutoffs step back from the last day of data in whole horizons (as_of - 28, as_of - 56, ...; on
the weekly grain from the last week, and horizons and windows count weeks). At
each cutoff a fresh model is fitted on the history up to the cutoff, forecasts the next
`horizon` days with the promotions planned at that time, and is scored on the days that
followed (stock-out days excluded). Scores are reported for all items and by demand segment
(new items launched shortly before the cutoff; the rest fast / slow / intermittent by their share
of zero-sale days before the cutoff), and per horizon for all items, in the long shape of
`ml.backtest_metrics`.

On synthetic data the generator's true expected demand is known: given `truth`, each cutoff also
scores the p50 against it (`wape_vs_truth`, `bias_vs_truth`) on every target day, stock-outs
included, since that is exactly the demand a censored day hides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_jobs.demand.base import DemandModel
from ml_jobs.demand.data import DemandData, history_until, known_future, to_panel
from ml_jobs.demand.grain import on_grid
from ml_jobs.demand.metrics import score, seasonal_naive_scale

METRIC_COLUMNS = ("model_name", "cutoff", "horizon", "segment", "metric", "value")
SEGMENTS = ("fast", "slow", "intermittent", "new")
TRUTH_METRICS = ("wape_vs_truth", "bias_vs_truth")


@dataclass(frozen=True)
class BacktestConfig:
    n_cutoffs: int = 2
    horizon: int = 28
    step_days: int = 28  # days between cutoffs
    min_train_days: int = 56  # a cutoff with less history before it is skipped
    segment_window_days: int = 90  # window of the zero-share that assigns segments
    slow_from: float = 0.25  # zero share at which an item stops being "fast"
    intermittent_from: float = 0.6  # zero share at which a "slow" item becomes "intermittent"
    new_item_days: int = 56  # items first seen this few days before the cutoff are "new"
    per_horizon: bool = True  # also score each horizon (segment "all")


@dataclass(frozen=True)
class BacktestResult:
    metrics: pd.DataFrame  # METRIC_COLUMNS
    forecasts: pd.DataFrame  # forecasts joined to actuals, one row per cutoff, item, horizon
    cutoffs: list[dt.date]


def backtest_cutoffs(data: DemandData, config: BacktestConfig) -> list[dt.date]:
    """Cutoffs newest first, keeping those with at least `min_train_days` of history."""
    first = data.history["demand_date"].min().date()
    cutoffs = [
        data.as_of - dt.timedelta(days=k * config.step_days) for k in range(1, config.n_cutoffs + 1)
    ]
    return [c for c in cutoffs if (c - first).days + 1 >= config.min_train_days]


def item_segments(history: pd.DataFrame, config: BacktestConfig) -> pd.Series:
    """new / fast / slow / intermittent per item: launch date first, then zero-sale share."""
    panel = to_panel(history)
    recent = panel.units[:, -panel.span(config.segment_window_days) :]
    observed = ~np.isnan(recent)
    zero_share = np.where(
        observed.sum(axis=1) > 0,
        ((recent == 0) & observed).sum(axis=1) / np.maximum(observed.sum(axis=1), 1),
        1.0,
    )
    segment = np.where(
        zero_share >= config.intermittent_from,
        "intermittent",
        np.where(zero_share >= config.slow_from, "slow", "fast"),
    )
    new_span = panel.span(config.new_item_days)
    launched_late = (panel.first_day > 0) & (panel.n_days - panel.first_day <= new_span)
    segment = np.where(launched_late, "new", segment)
    return pd.Series(segment, index=pd.Index(panel.item_ids, name="item_id"), name="segment")


def _long(
    model_name: str, cutoff: dt.date, horizon: int | None, segment: str, scores: dict[str, float]
) -> list[dict]:
    return [
        {
            "model_name": model_name,
            "cutoff": cutoff,
            "horizon": horizon,
            "segment": segment,
            "metric": metric,
            "value": value,
        }
        for metric, value in scores.items()
    ]


def truth_scores(frame: pd.DataFrame) -> dict[str, float]:
    """p50 against the true expected units (column `expected`) on every target day."""
    seen = frame[frame["expected"].notna()]
    expected, p50 = seen["expected"].to_numpy(), seen["p50"].to_numpy()
    total = expected.sum()
    if total <= 0:
        return {}
    return {
        "wape_vs_truth": float(np.abs(expected - p50).sum() / total),
        "bias_vs_truth": float((p50.sum() - total) / total),
    }


def score_cutoff(
    model_name: str, cutoff: dt.date, scored: pd.DataFrame, per_horizon: bool
) -> list[dict]:
    """Long metric rows for one cutoff's forecasts (columns actual, p10, p50, p90, scale and,
    on synthetic data, expected)."""
    has_truth = "expected" in scored.columns
    rows = _long(model_name, cutoff, None, "all", score(scored))
    if has_truth:
        rows += _long(model_name, cutoff, None, "all", truth_scores(scored))
    for segment in SEGMENTS:
        part = scored[scored["segment"] == segment]
        if part["actual"].notna().any():
            rows += _long(model_name, cutoff, None, segment, score(part))
        if has_truth and len(part):
            rows += _long(model_name, cutoff, None, segment, truth_scores(part))
    if per_horizon:
        for horizon, part in scored.groupby("horizon"):
            rows += _long(model_name, cutoff, int(horizon), "all", score(part))
    return rows


def backtest(
    make_model: Callable[[], DemandModel],
    data: DemandData,
    config: BacktestConfig | None = None,
    truth: pd.DataFrame | None = None,
) -> BacktestResult:
    """Fit a fresh model at each cutoff, forecast `horizon` days and score against actuals.

    `truth` (item_id, demand_date, expected_units), when given, adds the scores against truth.
    """
    config = config or BacktestConfig()
    history = data.history
    rows: list[dict] = []
    forecasts: list[pd.DataFrame] = []
    cutoffs = backtest_cutoffs(data, config)
    for cutoff in cutoffs:
        seen = history_until(history, cutoff)
        model = make_model().fit(seen)
        future = known_future(history, cutoff, config.horizon, data.promotions)
        forecast = on_grid(
            model.predict(seen, cutoff, config.horizon, future), cutoff, data.step_days
        )

        after = history[history["demand_date"] > pd.Timestamp(cutoff)]
        actual = after.assign(actual=after["units_sold"].where(~after["is_stockout"]))
        actual = actual.rename(columns={"demand_date": "target_date"})
        scored = forecast.merge(
            actual[["item_id", "target_date", "actual", "is_stockout"]],
            on=["item_id", "target_date"],
            how="inner",
        )
        if truth is not None:
            expected = truth.rename(
                columns={"demand_date": "target_date", "expected_units": "expected"}
            )
            scored = scored.merge(expected, on=["item_id", "target_date"], how="left")
        scored["scale"] = scored["item_id"].map(seasonal_naive_scale(seen))
        scored["segment"] = scored["item_id"].map(item_segments(seen, config))
        scored.insert(0, "cutoff", cutoff)
        scored.insert(0, "model_name", model.name)
        rows += score_cutoff(model.name, cutoff, scored, config.per_horizon)
        forecasts.append(scored)

    metrics = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    metrics["horizon"] = metrics["horizon"].astype("Int64")
    return BacktestResult(
        metrics=metrics,
        forecasts=pd.concat(forecasts, ignore_index=True) if forecasts else pd.DataFrame(),
        cutoffs=cutoffs,
    )


def summarize(metrics: pd.DataFrame) -> dict[str, float]:
    """Mean over cutoffs of each all-items, all-horizons metric: the run's headline numbers."""
    overall = metrics[(metrics["segment"] == "all") & metrics["horizon"].isna()]
    return {str(k): float(v) for k, v in overall.groupby("metric")["value"].mean().items()}
