"""The one interface every item demand forecaster follows, and the forecast frame it returns.

A forecaster is fitted on demand history up to a cutoff and then predicts, for every item in
that history, the p10/p50/p90 units of each of the next `horizon` days. The same object serves
backtests (history cut at an earlier date) and the production forecast (all history).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

FORECAST_COLUMNS = ("item_id", "target_date", "horizon", "p10", "p50", "p90")
QUANTILES = (0.1, 0.5, 0.9)


class DemandModel(Protocol):
    """A probabilistic item demand forecaster."""

    name: str  # registry model_name, e.g. "xgboost_quantile"
    kind: str  # torch | xgboost | baseline
    version: str

    @property
    def params(self) -> dict[str, Any]: ...

    def fit(self, history: pd.DataFrame) -> DemandModel: ...

    def predict(
        self,
        history: pd.DataFrame,
        as_of: dt.date,
        horizon: int = 28,
        future: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """FORECAST_COLUMNS for every item in `history`, horizons 1..horizon after `as_of`.

        `future` carries known-future covariates (see `data.known_future`); models that do not
        use them ignore it.
        """
        ...

    def save(self, directory: Path) -> list[Path]: ...


def forecast_frame(
    item_ids: np.ndarray, as_of: dt.date, quantiles: np.ndarray, step_days: int = 1
) -> pd.DataFrame:
    """Long forecast frame from an (items, horizon, 3) array of p10/p50/p90.

    Quantiles are sorted per row and clipped at zero, so 0 <= p10 <= p50 <= p90 always holds.
    Horizon h targets the period starting `step_days * h` days after `as_of` (7: weeks).
    """
    n_items, horizon, _ = quantiles.shape
    q = np.clip(np.sort(np.nan_to_num(quantiles, nan=0.0), axis=-1), 0.0, None)
    origin = pd.Timestamp(as_of)
    step = pd.Timedelta(days=step_days)
    targets = pd.date_range(origin + step, periods=horizon, freq=step)
    return pd.DataFrame(
        {
            "item_id": np.repeat(np.asarray(item_ids, dtype="int64"), horizon),
            "target_date": np.tile(targets.values, n_items),
            "horizon": np.tile(np.arange(1, horizon + 1, dtype="int32"), n_items),
            "p10": q[..., 0].reshape(-1),
            "p50": q[..., 1].reshape(-1),
            "p90": q[..., 2].reshape(-1),
        }
    )


def nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over `axis` ignoring NaN (censored or missing days); NaN where nothing was seen."""
    count = np.sum(~np.isnan(values), axis=axis)
    total = np.nansum(values, axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def nanstd(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Standard deviation over `axis` ignoring NaN; NaN with fewer than two observations."""
    count = np.sum(~np.isnan(values), axis=axis)
    mean = np.expand_dims(nanmean(values, axis=axis), axis)
    sq = np.nansum((values - mean) ** 2, axis=axis)
    return np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)), np.nan)
