"""Time grain of the demand models: daily, or weekly for shops whose days are too sparse.

`weekly_history` turns the daily fact table into one row per item per complete Monday-to-Sunday
week with the same columns, labelled by the week's Monday:

- units_sold, views, carts, category_searches: summed over the week's days;
- price, list_price: mean of the days that have one; discount_pct: mean over the days;
- is_promo: any promotion day in the week;
- is_stockout: the item was out of stock on more than `stockout_share` of the week's days. Such
  a week is censored (its units are missing demand, not low demand); a week with fewer
  stock-out days keeps its sales as they are.

Only weeks the data covers in full are kept: a first week that starts before the first day of
data or a last one that ends after its last day would look like a slump. An item launched
mid-week keeps that first week (it really sold only on those days).

Every model then works on the weekly panel unchanged: the Panel's columns are weeks
(`data.infer_step`), horizons count weeks, the seasonal naive repeats last week (or the same
week a year ago once two years are seen) and forecasts are labelled by each target week's
Monday (`on_grid`).
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd

GRAINS = ("day", "week")
GRAIN_ENV = "BASKETCAST_DEMAND_GRAIN"
STEP_DAYS = {"day": 1, "week": 7}
DEFAULT_HORIZON = {"day": 28, "week": 8}  # four weeks of days; two months of weeks


def check_grain(grain: str) -> str:
    """The grain if it is one we know; a clear error naming the setting otherwise."""
    if grain not in GRAINS:
        raise ValueError(
            f"unknown demand grain {grain!r} (--grain / {GRAIN_ENV}); expected one of {GRAINS}"
        )
    return grain


def default_grain() -> str:
    """The grain from the environment (BASKETCAST_DEMAND_GRAIN), else daily."""
    return check_grain(os.environ.get(GRAIN_ENV, "day").strip().lower() or "day")


def weekly_history(daily: pd.DataFrame, stockout_share: float = 0.5) -> pd.DataFrame:
    """One row per item per complete week (see the module notes), in the daily frame's columns."""
    if daily.empty:
        raise ValueError("no daily demand to aggregate into weeks")
    first, last = daily["demand_date"].min(), daily["demand_date"].max()
    week = daily["demand_date"] - pd.to_timedelta(daily["demand_date"].dt.dayofweek, unit="D")
    complete = (week >= first) & (week + pd.Timedelta(days=6) <= last)
    if not complete.any():
        raise ValueError(
            f"demand history {first.date()}..{last.date()} holds no complete Monday-to-Sunday "
            "week: use the daily grain"
        )
    frame = daily[complete].assign(demand_date=week[complete])
    grouped = frame.groupby(["item_id", "demand_date"], sort=True)
    out = grouped.agg(
        category_id=("category_id", "first"),
        units_sold=("units_sold", "sum"),
        views=("views", "sum"),
        carts=("carts", "sum"),
        category_searches=("category_searches", "sum"),
        price=("price", "mean"),
        list_price=("list_price", "mean"),
        discount_pct=("discount_pct", "mean"),
        is_promo=("is_promo", "any"),
        is_stockout=("is_stockout", "mean"),
    ).reset_index()
    out["is_stockout"] = out["is_stockout"] > stockout_share
    return out[list(daily.columns)]


def on_grid(forecast: pd.DataFrame, as_of: dt.date, step_days: int) -> pd.DataFrame:
    """Label each forecast row by its period's first day: as_of + step x horizon.

    Models count horizons in periods of the history they were given; on the weekly grain a
    forecast's horizon h is the week starting `step_days * h` days after the origin week's
    Monday. On the daily grain this is the day after the origin plus h - 1, as before.
    """
    if step_days == 1:
        return forecast
    offsets = pd.to_timedelta(forecast["horizon"].to_numpy() * step_days, unit="D")
    return forecast.assign(target_date=pd.Timestamp(as_of) + offsets)
