"""The shop's static world: items with their hidden demand parameters, shoppers with their hidden
tastes, and the promotion calendar the merchandising team plans in advance.

Hidden parameters (base demand, trend, elasticity, quality, category preference) never reach the
raw tables directly; they shape the behaviour the raw tables record, and the truth table.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

from ml_jobs.generate.shop_config import (
    STREAM_CATALOG,
    STREAM_PROMOTIONS,
    STREAM_USERS,
    ShopConfig,
)
from ml_jobs.generate.vocab import CATEGORIES, TITLE_ADJECTIVES

DAY_US = 86_400_000_000
EPOCH = datetime.date(1970, 1, 1)
PROMO_SLOT_DAYS = 30  # at most one promotion per item per slot, so windows never overlap
PROMO_DISCOUNTS = np.array([10.0, 15.0, 20.0, 25.0, 30.0, 40.0])
NEVER = np.iinfo(np.int32).max  # churn day of a user who never churns


def epoch_day(date: datetime.date) -> int:
    """Days since 1970-01-01: the date32 encoding."""
    return (date - EPOCH).days


@dataclass(frozen=True)
class Catalog:
    """Items (arrays indexed by item position; item_id = position + 1) and category seasonality."""

    category: np.ndarray  # int, index into the shop's categories
    brand: np.ndarray  # object, brand name
    brand_index: np.ndarray  # int, global brand number (category * 4 + brand within category)
    noun: np.ndarray  # object, what the item is ("tent"), used in titles and reviews
    title: np.ndarray  # object
    base_price: np.ndarray  # float, list price before promotions
    unit_cost: np.ndarray  # float, what the shop pays the supplier per unit
    launch_day: np.ndarray  # int, day index of launch (negative = before the first day)
    launched_at_us: np.ndarray  # int, launch timestamp in µs since epoch (UTC)
    base_demand: np.ndarray  # float, mean units/day of a mature item at trend 1 (hidden)
    trend_per_year: np.ndarray  # float, log growth of demand per year (hidden)
    ramp_days: np.ndarray  # float, time constant of a new item's ramp-up (hidden)
    elasticity: np.ndarray  # float, demand ∝ price^-elasticity (hidden)
    promo_lift: np.ndarray  # float, extra lift of the promotion badge itself (hidden)
    quality: np.ndarray  # float, latent quality driving ratings (hidden)
    lead_time_days: np.ndarray  # int, supplier lead time 2..10
    review_days: np.ndarray  # int, days of demand the order-up-to level covers
    safety_k: np.ndarray  # float, safety stock in standard deviations (low = under-stocked)
    category_names: tuple[str, ...]
    weekly: np.ndarray  # (categories, 7) demand multiplier by weekday (Monday = 0), mean 1
    yearly_amplitude: np.ndarray  # (categories,)
    yearly_peak: np.ndarray  # (categories,) day of year

    @property
    def size(self) -> int:
        return len(self.category)

    @property
    def item_id(self) -> np.ndarray:
        return np.arange(1, self.size + 1, dtype=np.int64)

    def items_table(self) -> dict[str, object]:
        """The `items` raw table."""
        names = np.array(self.category_names, dtype=object)
        return {
            "item_id": self.item_id,
            "category_id": self.category.astype(np.int64) + 1,
            "category_name": names[self.category],
            "brand": self.brand,
            "title": self.title,
            "base_price": self.base_price,
            "launched_at": self.launched_at_us,
        }


def build_catalog(config: ShopConfig) -> Catalog:
    """Draw the items: category, brand, title, price, launch date and hidden demand parameters."""
    rng = config.rng(STREAM_CATALOG)
    n, n_cat = config.items, config.categories
    specs = CATEGORIES[:n_cat]

    popularity = rng.dirichlet(np.full(n_cat, 5.0))
    first = rng.permutation(n_cat)[: min(n, n_cat)]  # every category gets an item when it can
    rest = rng.choice(n_cat, size=n - len(first), p=popularity)
    category = rng.permutation(np.concatenate([first, rest]))

    brand_in_cat = rng.integers(0, 4, size=n)
    brand = np.array([specs[c].brands[b] for c, b in zip(category, brand_in_cat, strict=True)])
    noun_idx = rng.integers(0, 6, size=n)
    noun = np.array([specs[c].nouns[k] for c, k in zip(category, noun_idx, strict=True)])
    adjective = np.array(TITLE_ADJECTIVES)[rng.integers(0, len(TITLE_ADJECTIVES), size=n)]
    title = np.array([f"{b} {a} {w}" for b, a, w in zip(brand, adjective, noun, strict=True)])

    log_price_mean = np.array([s.log_price for s in specs])[category]
    log_price = rng.normal(log_price_mean, 0.45)
    base_price = np.maximum(np.round(np.exp(log_price)) - 0.01, 0.99)
    unit_cost = np.round(base_price * rng.uniform(0.5, 0.7, size=n), 2)

    # Heavy-tailed demand: a few fast movers, many slow and intermittent items.
    quality = rng.normal(0.0, 1.0, size=n)
    relative_price = np.exp(log_price - log_price_mean)
    base_demand = np.exp(rng.normal(-0.35, 1.3, size=n)) * np.exp(0.15 * quality)
    base_demand = np.minimum(base_demand * relative_price**-0.5, 60.0) * config.demand_scale

    # Launches: most items are established, a share launches during the period.
    is_new = (rng.random(n) < config.new_item_share) & (config.days > 1)
    new_day = np.minimum(rng.integers(1, max(config.days - 14, 2), size=n), config.days - 1)
    old_day = -(30 + np.floor(rng.exponential(300.0, size=n))).astype(np.int64)
    launch_day = np.where(is_new, new_day, old_day).astype(np.int64)
    start_us = epoch_day(config.start_date) * DAY_US
    time_of_day = np.where(is_new, 0, rng.integers(0, DAY_US, size=n))  # new ones at midnight
    launched_at_us = start_us + launch_day * DAY_US + time_of_day

    understocked = rng.random(n) < config.understock_share
    safety_k = np.where(understocked, rng.uniform(-1.5, 0.0, n), rng.uniform(0.8, 2.5, n))

    weekly = np.exp(rng.normal(0.0, 0.08, size=(n_cat, 7)))
    weekly[:, 5:] *= np.array([s.weekend_lift for s in specs])[:, None]
    weekly /= weekly.mean(axis=1, keepdims=True)

    return Catalog(
        category=category,
        brand=brand.astype(object),
        brand_index=category * 4 + brand_in_cat,
        noun=noun.astype(object),
        title=title.astype(object),
        base_price=base_price,
        unit_cost=unit_cost,
        launch_day=launch_day,
        launched_at_us=launched_at_us,
        base_demand=base_demand,
        trend_per_year=rng.normal(0.0, 0.5, size=n),
        ramp_days=rng.uniform(5.0, 25.0, size=n),
        elasticity=rng.uniform(0.8, 2.5, size=n),
        promo_lift=rng.uniform(1.0, 1.3, size=n),
        quality=quality,
        lead_time_days=rng.integers(2, 11, size=n),
        review_days=rng.integers(7, 22, size=n),
        safety_k=safety_k,
        category_names=tuple(s.name for s in specs),
        weekly=weekly,
        yearly_amplitude=np.array([s.yearly_amplitude for s in specs]),
        yearly_peak=np.array([s.peak_day_of_year for s in specs], dtype=float),
    )


@dataclass(frozen=True)
class Promotions:
    """The promotion calendar: at most one window per item per 30-day slot (slots × items)."""

    start: np.ndarray  # (slots, items) day index of the first promo day, -1 = no promotion
    end: np.ndarray  # (slots, items) day index of the last promo day (inclusive)
    discount_pct: np.ndarray  # (slots, items)

    def discount_on(self, day: int) -> np.ndarray:
        """Discount (fraction 0..1) of every item on `day`."""
        slot = day // PROMO_SLOT_DAYS
        if slot >= self.start.shape[0]:
            return np.zeros(self.start.shape[1])
        active = (self.start[slot] >= 0) & (self.start[slot] <= day) & (day <= self.end[slot])
        return np.where(active, self.discount_pct[slot] / 100.0, 0.0)

    def table(self, start_date: datetime.date) -> dict[str, object]:
        """The `promotions` raw table, ordered by item then start date."""
        slot, item = np.nonzero(self.start >= 0)
        order = np.lexsort((slot, item))
        slot, item = slot[order], item[order]
        first = epoch_day(start_date)
        return {
            "item_id": item.astype(np.int64) + 1,
            "start_date": (first + self.start[slot, item]).astype(np.int32),
            "end_date": (first + self.end[slot, item]).astype(np.int32),
            "discount_pct": self.discount_pct[slot, item],
        }


def build_promotions(config: ShopConfig, catalog: Catalog) -> Promotions:
    """Plan promotion windows (3–14 days, 10–40 % off), up to `promo_plan_ahead_days` past the
    last day: promotions are known in advance, a future covariate for forecasts."""
    rng = config.rng(STREAM_PROMOTIONS)
    horizon = config.days + config.promo_plan_ahead_days
    slots = -(-horizon // PROMO_SLOT_DAYS)
    shape = (slots, catalog.size)
    length = rng.integers(3, 15, size=shape)
    offset = rng.integers(0, PROMO_SLOT_DAYS - 14, size=shape)
    start = np.arange(slots)[:, None] * PROMO_SLOT_DAYS + offset
    end = start + length - 1
    discount = PROMO_DISCOUNTS[rng.integers(0, len(PROMO_DISCOUNTS), size=shape)]
    runs = rng.random(shape) < config.promo_rate
    runs &= (start >= catalog.launch_day[None, :]) & (start < horizon)
    end = np.minimum(end, horizon - 1)
    return Promotions(
        start=np.where(runs, start, -1),
        end=np.where(runs, end, -1),
        discount_pct=np.where(runs, discount, 0.0),
    )


@dataclass(frozen=True)
class Users:
    """Shoppers: hidden category preferences and activity, sign-up and churn days.

    `draw` picks the shopper behind an event: proportional to preference for the category ×
    activity, among users who have signed up and not churned on that day.
    """

    preference: np.ndarray  # (users, categories), rows sum to 1
    activity: np.ndarray  # (users,), relative shopping frequency
    join_day: np.ndarray  # (users,), first day the user can act (<= 0: existing customer)
    churn_day: np.ndarray  # (users,), first day the user no longer acts
    cdf: np.ndarray  # (categories + 1, users) cumulative draw weights; last row: any category

    @property
    def any_category(self) -> int:
        """Group index for draws by activity alone (searches for unmet terms)."""
        return self.cdf.shape[0] - 1

    def draw(self, rng: np.random.Generator, group: np.ndarray, day: int) -> np.ndarray:
        """User positions (user_id - 1) for events of the given category groups on `day`."""
        out = np.zeros(len(group), dtype=np.int64)
        todo = np.arange(len(group))
        for _ in range(64):  # rejection: redraw users who are not active that day
            if todo.size == 0:
                break
            picked = self._sample(rng, group[todo])
            ok = (self.join_day[picked] <= day) & (day < self.churn_day[picked])
            out[todo[ok]] = picked[ok]
            todo = todo[~ok]
        return out  # anything left falls back to user 0, who is always active

    def _sample(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        u = rng.random(len(group))
        picked = np.empty(len(group), dtype=np.int64)
        for g in np.unique(group):
            mask = group == g
            cdf = self.cdf[g]
            picked[mask] = np.searchsorted(cdf, u[mask] * cdf[-1], side="right")
        return np.minimum(picked, self.cdf.shape[1] - 1)


def build_users(config: ShopConfig, catalog: Catalog) -> Users:
    """Draw shoppers with Dirichlet category tastes and log-normal activity."""
    rng = config.rng(STREAM_USERS)
    n, n_cat = config.users, config.categories
    share = np.bincount(catalog.category, minlength=n_cat) + 0.5
    preference = rng.dirichlet(2.0 * share / share.sum(), size=n)
    preference = np.maximum(preference, 1e-9)
    preference /= preference.sum(axis=1, keepdims=True)
    activity = np.exp(rng.normal(0.0, 0.9, size=n))

    joins_later = rng.random(n) < config.new_user_share
    join_day = np.where(joins_later, rng.integers(1, max(config.days, 2), size=n), -1)
    churns = rng.random(n) < config.churn_share
    churn_day = np.where(churns, join_day + 1 + rng.integers(0, config.days, size=n), NEVER)
    join_day[0], churn_day[0] = -1, NEVER  # user 1 is always around: the draw's fallback

    weights = np.vstack([(preference * activity[:, None]).T, activity[None, :]])
    return Users(
        preference=preference,
        activity=activity,
        join_day=join_day,
        churn_day=churn_day,
        cdf=np.cumsum(weights, axis=1),
    )
