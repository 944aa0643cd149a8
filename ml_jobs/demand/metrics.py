"""Forecast accuracy metrics for item demand, scored only where demand was observed.

Stock-out days are censored (sales were capped by an empty shelf), so they never count for or
against a forecast: callers pass them as NaN actuals (or drop them) and every metric ignores them.

- WAPE: sum |actual - p50| / sum actual.
- MASE: |actual - p50| scaled by the item's in-sample MAE of the weekly seasonal naive
  (|y_t - y_{t-7}| over the training history), averaged over rows of items with a nonzero scale.
- pinball loss for p10, p50, p90 and their mean (the champion/challenger score).
- coverage of the p10-p90 interval (0.8 when calibrated).
- bias: (sum p50 - sum actual) / sum actual; positive means over-forecasting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_jobs.demand.base import QUANTILES, nanmean
from ml_jobs.demand.data import to_panel

METRICS = (
    "wape",
    "mase",
    "bias",
    "pinball_p10",
    "pinball_p50",
    "pinball_p90",
    "pinball_mean",
    "coverage_p10_p90",
    "n_obs",
)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def wape(actual: np.ndarray, p50: np.ndarray) -> float:
    return _ratio(np.abs(actual - p50).sum(), actual.sum())


def bias(actual: np.ndarray, p50: np.ndarray) -> float:
    return _ratio(p50.sum() - actual.sum(), actual.sum())


def pinball_loss(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """Mean quantile (pinball) loss: under-forecasts cost `quantile`, over-forecasts 1 - it."""
    if len(actual) == 0:
        return float("nan")
    error = actual - forecast
    return float(np.mean(np.maximum(quantile * error, (quantile - 1.0) * error)))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    if len(actual) == 0:
        return float("nan")
    return float(np.mean((actual >= lower) & (actual <= upper)))


def mase(actual: np.ndarray, p50: np.ndarray, scale: np.ndarray) -> float:
    ok = np.isfinite(scale) & (scale > 0)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(actual[ok] - p50[ok]) / scale[ok]))


def seasonal_naive_scale(history: pd.DataFrame, season: int | None = None) -> pd.Series:
    """Per item in-sample MAE of the seasonal naive, skipping stock-out days.

    The season defaults to the history's grain (`Panel.season`: 7 days, or 1 / 52 weeks).
    """
    panel = to_panel(history)
    season = panel.season if season is None else season
    units = panel.units
    diffs = np.abs(units[:, season:] - units[:, :-season]) if units.shape[1] > season else None
    scale = nanmean(diffs, axis=1) if diffs is not None else np.full(len(units), np.nan)
    return pd.Series(scale, index=pd.Index(panel.item_ids, name="item_id"), name="scale")


def score(frame: pd.DataFrame) -> dict[str, float]:
    """All METRICS for a frame of actual, p10, p50, p90 and scale; NaN actuals are skipped."""
    seen = frame[frame["actual"].notna()]
    actual = seen["actual"].to_numpy(dtype="float64")
    q = {name: seen[name].to_numpy(dtype="float64") for name in ("p10", "p50", "p90")}
    pinball = {
        f"pinball_{name}": pinball_loss(actual, q[name], level)
        for name, level in zip(("p10", "p50", "p90"), QUANTILES, strict=True)
    }
    return {
        "wape": wape(actual, q["p50"]),
        "mase": mase(actual, q["p50"], seen["scale"].to_numpy(dtype="float64")),
        "bias": bias(actual, q["p50"]),
        **pinball,
        "pinball_mean": float(np.mean(list(pinball.values()))),
        "coverage_p10_p90": coverage(actual, q["p10"], q["p90"]),
        "n_obs": float(len(seen)),
    }
