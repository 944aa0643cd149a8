"""Item demand history: read it from the warehouse and lay it out for the forecasters.

The training input is `marts.fct_item_daily_demand` (docs/contracts.md, section 2): one row per
item per day, zero-filled, with stock-out days flagged. Stock-out days are censored demand (the
shelf was empty, so zero sales say nothing about what shoppers wanted), so the forecasters see
them as missing values, never as zeros.

The models also run on a weekly grain (`grain.weekly_history`): the same columns, one row per
item per week labelled by the week's Monday. Everything below works in steps of the history's
grain (`infer_step`: 1 day, or 7 for weekly rows), so a Panel column is a day or a week.

Planned promotions and list prices are known in advance, so forecasts may use them for the days
they predict. `known_future` collects them: what the warehouse already holds for a target day,
else the planned promotions in `staging.stg_shop__promotions` and the last known list price.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_jobs.config import Paths

DEMAND_TABLE = "marts.fct_item_daily_demand"
PROMOTIONS_TABLE = "staging.stg_shop__promotions"

DEMAND_COLUMNS = (
    "item_id",
    "demand_date",
    "category_id",
    "units_sold",
    "views",
    "carts",
    "category_searches",
    "price",
    "list_price",
    "discount_pct",
    "is_promo",
    "is_stockout",
)
PROMOTION_COLUMNS = ("item_id", "start_date", "end_date", "discount_pct")


@dataclass(frozen=True)
class DemandData:
    """Everything a demand run reads from the warehouse."""

    history: pd.DataFrame  # DEMAND_COLUMNS, one row per item per day (or week: see grain.py)
    promotions: pd.DataFrame | None  # PROMOTION_COLUMNS, or None when staging has no promotions
    as_of: dt.date  # last period of data (a day, or a week's Monday): forecasts start after it
    grain: str = "day"

    @property
    def n_items(self) -> int:
        return int(self.history["item_id"].nunique())

    @property
    def step_days(self) -> int:
        return 7 if self.grain == "week" else 1

    @property
    def last_day(self) -> dt.date:
        """The last day of data used (the as-of date recorded with predictions)."""
        return self.as_of + dt.timedelta(days=self.step_days - 1)


def infer_step(dates: pd.Series) -> int:
    """Days between periods of a demand frame: 1 for daily rows, 7 for weekly ones.

    The fact table is zero-filled, so a daily history holds consecutive days and a weekly one
    a row every seventh day; the step is the greatest common divisor of the gaps.
    """
    days = np.unique(dates.to_numpy(dtype="datetime64[D]").astype(np.int64))
    if len(days) < 2:
        return 1
    return int(np.gcd.reduce(np.diff(days)))


def clean_history(frame: pd.DataFrame) -> pd.DataFrame:
    """Type the demand frame the way the forecasters expect, tolerating nulls a dataset lacks."""
    out = frame.loc[:, list(DEMAND_COLUMNS)].copy()
    out["item_id"] = out["item_id"].astype("int64")
    out["demand_date"] = pd.to_datetime(out["demand_date"]).dt.normalize().astype("datetime64[ns]")
    for column in ("category_id", "units_sold", "views", "carts", "category_searches"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in ("price", "list_price", "discount_pct"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out["discount_pct"] = out["discount_pct"].fillna(0.0)
    for column in ("is_promo", "is_stockout"):
        out[column] = out[column].astype("boolean").fillna(False).astype(bool)
    return out.sort_values(["item_id", "demand_date"], ignore_index=True)


def load_demand_data(paths: Paths, grain: str = "day", target: str | None = None) -> DemandData:
    """Read the daily demand fact table (and planned promotions, if staged) read-only, from
    where `target` built the warehouse (ml_jobs.sources: DuckDB, or the Spark catalog).

    `grain` "week" sums the days into complete Monday-to-Sunday weeks (`grain.weekly_history`).
    """
    from ml_jobs.sources import reader  # the warehouse is needed here only: models get frames

    with reader(paths, target) as source:
        if not source.exists(DEMAND_TABLE):
            raise LookupError(
                f"{DEMAND_TABLE} is missing from {source.where}: run `dbt build` first"
            )
        history = source.frame(f"SELECT {', '.join(DEMAND_COLUMNS)} FROM {DEMAND_TABLE}")
        promotions = None
        if source.exists(PROMOTIONS_TABLE):
            try:
                promotions = source.frame(
                    f"SELECT {', '.join(PROMOTION_COLUMNS)} FROM {PROMOTIONS_TABLE} "
                    "ORDER BY item_id, start_date, end_date, discount_pct"
                )
            except source.errors:  # e.g. a staging view whose raw files are gone: no promotions
                promotions = None
    if history.empty:
        raise ValueError(f"{DEMAND_TABLE} is empty: nothing to forecast")
    history = clean_history(history)
    if grain == "week":
        from ml_jobs.demand.grain import weekly_history

        history = weekly_history(history)
    elif grain != "day":
        raise ValueError(f"unknown demand grain {grain!r}; expected 'day' or 'week'")
    return DemandData(
        history=history,
        promotions=None if promotions is None else clean_promotions(promotions),
        as_of=history["demand_date"].max().date(),
        grain=grain,
    )


TRUTH_COLUMNS = ("item_id", "demand_date", "expected_units")


def load_truth(truth_dir: Path) -> pd.DataFrame | None:
    """The generator's true expected demand (synthetic data only), or None when there is none."""
    folder = truth_dir / "item_daily_demand"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    frame = pd.concat([pd.read_parquet(f, columns=list(TRUTH_COLUMNS)) for f in files])
    frame["item_id"] = frame["item_id"].astype("int64")
    frame["demand_date"] = pd.to_datetime(frame["demand_date"]).astype("datetime64[ns]")
    frame["expected_units"] = frame["expected_units"].astype("float64")
    return frame.reset_index(drop=True)


def clean_promotions(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(PROMOTION_COLUMNS)].dropna(subset=["item_id", "start_date"]).copy()
    out["item_id"] = out["item_id"].astype("int64")
    out["start_date"] = pd.to_datetime(out["start_date"]).astype("datetime64[ns]")
    out["end_date"] = pd.to_datetime(out["end_date"]).fillna(out["start_date"])
    out["end_date"] = out["end_date"].astype("datetime64[ns]")
    out["discount_pct"] = pd.to_numeric(out["discount_pct"], errors="coerce").fillna(0.0)
    return out.reset_index(drop=True)


def history_until(history: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The rows a forecaster standing at the end of `day` could have seen."""
    return history[history["demand_date"] <= pd.Timestamp(day)]


def known_future(
    history: pd.DataFrame,
    as_of: dt.date,
    horizon: int,
    promotions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Planned list price and discount for every item and each of the next `horizon` periods.

    A target period the warehouse already holds (a backtest predicting inside the data) keeps
    its recorded list price and promotion: both are planned before the day. Later periods take
    the staged planned promotions (largest discount of the overlapping ones each day, averaged
    over a week's seven days on a weekly grain) and the item's last known list price.
    Columns: item_id, target_date, horizon, list_price, discount_pct.
    """
    step = infer_step(history["demand_date"])
    origin = pd.Timestamp(as_of)
    items = np.sort(history["item_id"].unique())
    targets = pd.date_range(origin + pd.Timedelta(days=step), periods=horizon, freq=f"{step}D")
    grid = pd.DataFrame(
        {
            "item_id": np.repeat(items, horizon),
            "target_date": np.tile(targets.values, len(items)),
            "horizon": np.tile(np.arange(1, horizon + 1), len(items)),
        }
    )
    seen = history[history["demand_date"] <= origin]
    last_price = seen.dropna(subset=["list_price"]).groupby("item_id")["list_price"].last()
    grid["list_price"] = grid["item_id"].map(last_price)
    grid["discount_pct"] = 0.0

    if promotions is not None and not promotions.empty:
        end = targets[-1] + pd.Timedelta(days=step - 1)
        active = promotions[(promotions["end_date"] > origin) & (promotions["start_date"] <= end)]
        if not active.empty:
            days = [
                pd.DataFrame(
                    {
                        "item_id": row.item_id,
                        "target_date": pd.date_range(
                            max(row.start_date, targets[0]), min(row.end_date, end), freq="D"
                        ),
                        "discount_pct": row.discount_pct,
                    }
                )
                for row in active.itertuples(index=False)
            ]
            planned = pd.concat(days).groupby(["item_id", "target_date"])["discount_pct"].max()
            if step > 1:  # a week's planned discount: the mean over its days (0 when none)
                day = planned.index.get_level_values("target_date")
                offset = (day - targets[0]).days // step * step
                period = targets[0] + pd.to_timedelta(offset, unit="D")
                planned = planned.groupby([planned.index.get_level_values("item_id"), period])
                planned = planned.sum() / step
            key = pd.MultiIndex.from_frame(grid[["item_id", "target_date"]])
            grid["discount_pct"] = planned.reindex(key).fillna(0.0).to_numpy()

    recorded = history[history["demand_date"] > origin].set_index(["item_id", "demand_date"])
    if not recorded.empty:
        key = pd.MultiIndex.from_frame(grid[["item_id", "target_date"]])
        for column in ("list_price", "discount_pct"):
            values = recorded[column].reindex(key).to_numpy()
            grid[column] = np.where(np.isnan(values), grid[column].to_numpy(), values)
    return grid


@dataclass(frozen=True)
class Panel:
    """Demand history as item × day arrays: the layout both forecasters compute on.

    `units` is NaN on stock-out days (censored) and before an item's first day. A column is
    `step_days` days: 1 on the daily grain, 7 on the weekly one (then "day" below means week).
    """

    item_ids: np.ndarray  # (n,)
    start: pd.Timestamp  # date of column 0
    category_id: np.ndarray  # (n,)
    first_day: np.ndarray  # (n,) column of each item's first row
    units: np.ndarray  # (n, T)
    views: np.ndarray
    carts: np.ndarray
    searches: np.ndarray
    price: np.ndarray
    list_price: np.ndarray
    discount_pct: np.ndarray
    step_days: int = 1

    @property
    def n_days(self) -> int:
        """Columns (periods of `step_days` days)."""
        return self.units.shape[1]

    @property
    def season(self) -> int:
        """Columns per seasonal cycle: a week of days; a year of weeks once two years are
        seen, else one week (a single year is too little to learn yearly seasonality from)."""
        if self.step_days == 1:
            return 7
        return 52 if self.n_days >= 104 else 1

    def span(self, days: int) -> int:
        """Columns covering `days` days (at least one)."""
        return max(1, -(-days // self.step_days))

    def column(self, day: dt.date | pd.Timestamp) -> int:
        return int((pd.Timestamp(day) - self.start).days) // self.step_days

    def day(self, column: int) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=column * self.step_days)


def to_panel(
    history: pd.DataFrame, item_ids: np.ndarray | None = None, end: dt.date | None = None
) -> Panel:
    """Pivot a demand frame into a Panel.

    Rows follow `item_ids` (default: the sorted ids in `history`); columns run from the first
    period of `history` to `end` (default: its last one), so a forecast origin always has a
    column. The step (day or week) is the history's own (`infer_step`).
    """
    if item_ids is None:
        item_ids = np.sort(history["item_id"].unique())
    step = infer_step(history["demand_date"])
    start = history["demand_date"].min()
    last = history["demand_date"].max() if end is None else pd.Timestamp(end)
    n_days = int((last - start).days) // step + 1
    rows = pd.Index(item_ids).get_indexer(history["item_id"])
    keep = (rows >= 0) & (history["demand_date"] <= last).to_numpy()
    rows = rows[keep]
    frame = history[keep]
    cols = ((frame["demand_date"] - start).dt.days // step).to_numpy()

    def grid(values: pd.Series) -> np.ndarray:
        out = np.full((len(item_ids), n_days), np.nan)
        out[rows, cols] = values.to_numpy(dtype="float64", na_value=np.nan)
        return out

    units = grid(frame["units_sold"])
    units[rows[frame["is_stockout"].to_numpy()], cols[frame["is_stockout"].to_numpy()]] = np.nan
    first_day = np.full(len(item_ids), n_days, dtype=np.int64)
    np.minimum.at(first_day, rows, cols)
    category = frame.groupby(rows)["category_id"].first()
    category_id = np.full(len(item_ids), np.nan)
    category_id[category.index.to_numpy()] = category.to_numpy(dtype="float64", na_value=np.nan)
    return Panel(
        item_ids=np.asarray(item_ids),
        start=start,
        category_id=category_id,
        first_day=first_day,
        units=units,
        views=grid(frame["views"]),
        carts=grid(frame["carts"]),
        searches=grid(frame["category_searches"]),
        price=grid(frame["price"]),
        list_price=grid(frame["list_price"]),
        discount_pct=grid(frame["discount_pct"]),
        step_days=step,
    )
