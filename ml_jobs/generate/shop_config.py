"""The knobs of the synthetic shop: its size, its seed, the rates of the behaviour it simulates."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields

import numpy as np

from ml_jobs.generate.vocab import CATEGORIES

# Random stream keys: one per part of the simulation (see ShopConfig.rng).
STREAM_CATALOG = 1
STREAM_USERS = 2
STREAM_PROMOTIONS = 3
STREAM_INTEREST = 4
STREAM_DAY = 5
STREAM_INVENTORY = 6


@dataclass(frozen=True)
class ShopConfig:
    """One synthetic shop. Same config (seed included) → byte-identical Parquet output.

    The defaults make a small demo shop (~2k users, 150 items, 8 months, ~0.5M events) that
    generates in about a second; scale `users`, `items` and `days` up for load tests.
    """

    users: int = 2000
    items: int = 150
    days: int = 240
    seed: int = 7
    start_date: datetime.date = datetime.date(2026, 1, 1)
    categories: int = 12  # how many of vocab.CATEGORIES the shop sells
    demand_scale: float = 1.0  # multiplies every item's base demand (units/day)
    new_item_share: float = 0.10  # items launched during the period (cold start)
    promo_rate: float = 0.30  # chance an item runs a promotion in each 30-day slot
    promo_plan_ahead_days: int = 28  # promotions are planned this far past the last day
    understock_share: float = 0.20  # items whose reorder point is set too low
    supplier_shortfall_rate: float = 0.08  # replenishment orders that arrive short
    views_per_unit: float = 6.0  # browsing views per unit of (leading) demand
    cart_rate: float = 0.10  # browsing views that add to cart without buying
    favorite_rate: float = 0.03  # browsing views that favourite the item
    searches_per_unit: float = 0.6  # category/brand searches per unit of (leading) demand
    unmet_search_share: float = 0.10  # searches for things the catalogue does not carry
    behaviour_lead_days: int = 2  # browsing on day t follows the latent interest of day t+lead
    basket_share: float = 0.25  # purchase lines that join another shopper's basket that day
    cancel_rate: float = 0.03  # orders cancelled (not demand)
    return_rate: float = 0.02  # orders returned (still demand)
    review_rate: float = 0.10  # completed or returned lines that get a review
    new_user_share: float = 0.25  # users who sign up during the period
    churn_share: float = 0.12  # users who stop shopping during the period
    row_group_rows: int = 1_000_000  # rows buffered per Parquet row group
    file_rows: int = 20_000_000  # rows per part file before rolling to the next

    def rng(self, *keys: int) -> np.random.Generator:
        """An independent random stream per (purpose, day, ...) key, so every part of the shop is
        reproducible on its own and does not shift when another part draws more numbers."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *keys]))

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot make a shop."""
        for name in ("users", "items", "days", "categories", "row_group_rows", "file_rows"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ShopConfig.{name} must be positive, got {getattr(self, name)}")
        if self.categories > len(CATEGORIES):
            raise ValueError(
                f"ShopConfig.categories must be at most {len(CATEGORIES)}, got {self.categories}"
            )
        start = self.start_date
        if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
            raise ValueError(f"ShopConfig.start_date must be a datetime.date, got {start!r}")
        if self.seed < 0:
            raise ValueError(f"ShopConfig.seed must be non-negative, got {self.seed}")
        for name in ("promo_plan_ahead_days", "behaviour_lead_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"ShopConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("demand_scale", "views_per_unit", "searches_per_unit"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ShopConfig.{name} must be >= 0, got {getattr(self, name)}")
        shares = [f.name for f in fields(self) if f.name.endswith(("_share", "_rate"))]
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ShopConfig.{name} must be within [0, 1], got {value}")
        for name in ("unmet_search_share", "cancel_rate"):
            if getattr(self, name) >= 1.0:
                raise ValueError(f"ShopConfig.{name} must be below 1, got {getattr(self, name)}")
        if self.cancel_rate + self.return_rate > 1.0:
            raise ValueError(
                "ShopConfig.cancel_rate + return_rate must be at most 1, "
                f"got {self.cancel_rate + self.return_rate}"
            )
