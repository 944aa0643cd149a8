"""What is known about each item at a forecast origin: recent levels, behaviour, promotions.

Shared by the XGBoost baseline (as features) and the torch model (as static inputs); it needs
numpy only, so the torch model trains where neither XGBoost nor DuckDB is installed.

Windows and lags are named in days; on a weekly panel they cover the same time in weeks
(`Panel.span`: 7 days -> 1 week, 28 -> 4, 90 -> 13).
"""

from __future__ import annotations

import numpy as np

from ml_jobs.demand.base import nanmean, nanstd
from ml_jobs.demand.data import Panel


def _window(values: np.ndarray, origin: int, days: int) -> np.ndarray:
    return values[:, max(0, origin - days + 1) : origin + 1]


def _column(values: np.ndarray, col: int) -> np.ndarray:
    return values[:, col] if col >= 0 else np.full(len(values), np.nan)


def origin_features(panel: Panel, origin: int) -> dict[str, np.ndarray]:
    """Per-item features known at the end of period `origin` (a panel column). Units unscaled."""
    units = panel.units
    d7, d28, d90 = panel.span(7), panel.span(28), panel.span(90)
    cols = np.arange(panel.n_days)[None, :]
    alive = cols >= panel.first_day[:, None]
    seen_28 = _window(units, origin, d28)
    seen_90 = _window(units, origin, d90)
    promo_28 = _window(panel.discount_pct, origin, d28) > 0
    stockout_28 = _window(np.isnan(units) & alive, origin, d28)
    alive_28 = _window(alive, origin, d28)
    views_7 = nanmean(_window(panel.views, origin, d7))
    views_28 = nanmean(_window(panel.views, origin, d28))
    carts_7 = nanmean(_window(panel.carts, origin, d7))
    carts_28 = nanmean(_window(panel.carts, origin, d28))
    item_mean = nanmean(units[:, : origin + 1])
    mean_28 = nanmean(seen_28)
    level = np.where(np.isnan(mean_28), item_mean, mean_28)
    return {
        "category_id": panel.category_id,
        "scale": 1.0 + np.nan_to_num(level, nan=0.0),
        # lag k = units k days (periods) before the first forecast period (origin + 1)
        "lag_1": _column(units, origin),
        "lag_7": _column(units, origin - d7 + 1),
        "lag_14": _column(units, origin - panel.span(14) + 1),
        "lag_28": _column(units, origin - d28 + 1),
        "mean_7": nanmean(_window(units, origin, d7)),
        "mean_28": mean_28,
        "std_7": nanstd(_window(units, origin, max(d7, 2))),
        "std_28": nanstd(seen_28),
        "mean_28_no_promo": nanmean(np.where(promo_28, np.nan, seen_28)),
        "item_mean": item_mean,
        "views_7": views_7,
        "views_28": views_28,
        "views_trend": (views_7 + 1.0) / (views_28 + 1.0),
        "carts_7": carts_7,
        "carts_28": carts_28,
        "carts_trend": (carts_7 + 1.0) / (carts_28 + 1.0),
        "searches_7": nanmean(_window(panel.searches, origin, d7)),
        "searches_28": nanmean(_window(panel.searches, origin, d28)),
        "paid_price_28": nanmean(_window(panel.price, origin, d28)),
        "discount_at_origin": _column(panel.discount_pct, origin),
        "promo_share_28": promo_28.sum(axis=1) / np.maximum(alive_28.sum(axis=1), 1),
        "zero_share_90": nanmean(np.where(np.isnan(seen_90), np.nan, seen_90 == 0)),
        "stockout_share_28": stockout_28.sum(axis=1) / np.maximum(alive_28.sum(axis=1), 1),
        "age_days": ((origin - panel.first_day) * panel.step_days).astype("float64"),
    }
