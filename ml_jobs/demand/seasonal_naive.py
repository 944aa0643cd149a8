"""Seasonal naive: the baseline every item demand model has to beat.

p50 for a target day is the item's mean units on the same weekday over the last `weeks` weeks
before the forecast origin (stock-out days skipped: censored, not zero). p10/p90 add the item's
empirical 10th/90th percentile of in-sample residuals of that same rule over the last
`residual_weeks` weeks. Items too new to have residuals get a Poisson-like band instead.

On the weekly grain the season is the Panel's (`Panel.season`): one week (the mean of the last
`weeks` weeks) while less than two years are seen, else 52 weeks (the same week of past years).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_jobs.demand.base import forecast_frame, nanmean
from ml_jobs.demand.data import history_until, to_panel

Z90 = 1.2816  # standard normal 90th percentile, for the fallback band


@dataclass(frozen=True)
class SeasonalNaiveParams:
    weeks: int = 4  # same-weekday values averaged for p50
    residual_weeks: int = 8  # window of in-sample residuals that sets the p10/p90 band
    min_residuals: int = 8  # fewer than this: fall back to a Poisson-like band


def same_weekday_mean(
    units: np.ndarray, origin: int, offsets: np.ndarray, weeks: int, season: int = 7
) -> np.ndarray:
    """Mean of each item's last `weeks` same-season values seen at `origin`, per target offset.

    `offsets` are periods after the origin (1 = the next day); `season` is the cycle in
    periods (7 days: same weekday). Returns (items, len(offsets)).
    """
    base = origin + offsets - season * np.ceil(offsets / season).astype(int)  # latest seen
    cols = base[:, None] - season * np.arange(weeks)[None, :]  # (len(offsets), weeks)
    valid = cols >= 0
    values = units[:, np.where(valid, cols, 0)]  # (items, len(offsets), weeks)
    values = np.where(valid[None], values, np.nan)
    return nanmean(values, axis=-1)


class SeasonalNaive:
    """Weekly seasonal naive with empirical residual quantiles."""

    name = "seasonal_naive"
    kind = "baseline"
    version = "0.1.0"

    def __init__(self, params: SeasonalNaiveParams | None = None) -> None:
        self.config = params or SeasonalNaiveParams()

    @property
    def params(self) -> dict[str, Any]:
        return asdict(self.config)

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        """Nothing to learn: the forecast is a rule over the history seen at predict time."""
        return self

    def predict(
        self,
        history: pd.DataFrame,
        as_of: dt.date,
        horizon: int = 28,
        future: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        panel = to_panel(history_until(history, as_of), end=as_of)
        units, origin, season = panel.units, panel.column(as_of), panel.season
        p = self.config

        p50 = same_weekday_mean(units, origin, np.arange(1, horizon + 1), p.weeks, season)
        recent = nanmean(units[:, max(0, origin - panel.span(28) + 1) : origin + 1], axis=1)
        p50 = np.where(np.isnan(p50), recent[:, None], p50)
        p50 = np.nan_to_num(p50, nan=0.0)

        # In-sample residuals of the same rule, one step ahead of each recent day.
        days = np.arange(max(season, origin - panel.span(7 * p.residual_weeks) + 1), origin + 1)
        if len(days):
            fitted = np.stack(
                [
                    same_weekday_mean(units, int(d) - 1, np.array([1]), p.weeks, season)[:, 0]
                    for d in days
                ],
                axis=1,
            )
            residuals = units[:, days] - fitted
        else:
            residuals = np.full((len(units), 1), np.nan)
        enough = np.sum(~np.isnan(residuals), axis=1) >= p.min_residuals
        filled = np.where(enough[:, None], residuals, 0.0)
        lo = np.where(enough, np.nanquantile(filled, 0.1, axis=1), np.nan)
        hi = np.where(enough, np.nanquantile(filled, 0.9, axis=1), np.nan)

        spread = Z90 * np.sqrt(p50)
        p10 = np.where(enough[:, None], p50 + np.minimum(lo, 0.0)[:, None], p50 - spread)
        p90 = np.where(enough[:, None], p50 + np.maximum(hi, 0.0)[:, None], p50 + spread)
        quantiles = np.stack([p10, p50, p90], axis=-1)
        return forecast_frame(panel.item_ids, as_of, quantiles, panel.step_days)

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "model.json"
        payload = {"name": self.name, "version": self.version, "params": self.params}
        path.write_text(json.dumps(payload, indent=2))
        return [path]
