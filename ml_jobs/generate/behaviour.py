"""One day of shopper behaviour: orders, the events around them, browsing, searches, reviews.

Purchases come first: each item gets Poisson(λ) order lines, each line a shopper drawn by
category taste × activity, and a shopper's lines of the day form one order. Stock is first come,
first served, so lines beyond the start-of-day stock are cut (the shopper still viewed the item).
Every kept line is a `purchase` event with the same user, item, quantity and timestamp as its
order line, usually preceded by a view and a cart in the same session. Browsing views, carts,
favourites and searches follow the *leading* interest, so they rise before purchases do.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml_jobs.generate.catalog import DAY_US, Catalog, Users, epoch_day
from ml_jobs.generate.demand import DemandDay
from ml_jobs.generate.shop_config import STREAM_DAY, ShopConfig
from ml_jobs.generate.text import noisy_queries, review_texts
from ml_jobs.generate.vocab import CATEGORIES, HOURLY_PROFILE, UNMET_TERMS

# Internal event codes, in the order events of one instant are listed.
EVENT_TYPES = ("view", "search", "favorite", "cart", "purchase")
VIEW, SEARCH, FAVORITE, CART, PURCHASE = range(5)
ORDER_STATUSES = ("completed", "cancelled", "returned")
COMPLETED, CANCELLED, RETURNED = range(3)

EXTRA_UNITS = 0.25  # units per order line = 1 + Poisson(EXTRA_UNITS)
VIEW_BEFORE_BUY = 0.9  # purchase lines preceded by a view of the item
CART_BEFORE_BUY = 0.8  # kept purchase lines preceded by an add-to-cart
CATEGORY_SEARCH_SHARE = 0.65  # of catalogue searches; the rest name a brand
HOUR_US = 3_600_000_000
_PIECE_DTYPES = (np.int64, np.int64, np.int8, np.int64, np.int64, np.float64, object)
MINUTE_US = 60_000_000


@dataclass
class IdCounters:
    """Last id handed out per table; ids are global, increasing with time."""

    event: int = 0
    order: int = 0
    review: int = 0


@dataclass(frozen=True)
class DayOutput:
    """Rows of one day for the streamed tables, plus units that left the shelf per item."""

    events: dict[str, object]
    order_lines: dict[str, object]
    reviews: dict[str, object]
    sold: np.ndarray


@dataclass
class _EventParts:
    """Collects event pieces (user, item, code, ts, quantity, price, query) before sorting."""

    pieces: list[tuple[np.ndarray, ...]] = field(default_factory=list)

    def add(
        self,
        user: np.ndarray,
        item: np.ndarray,
        code: int,
        ts: np.ndarray,
        quantity: np.ndarray | None = None,
        price: np.ndarray | None = None,
        query: np.ndarray | None = None,
    ) -> None:
        """Queue events of one kind; item -1, quantity -1, price NaN and query None mean null."""
        n = len(user)
        if n == 0:
            return
        self.pieces.append(
            (
                np.asarray(user, dtype=np.int64),
                np.asarray(item, dtype=np.int64),
                np.full(n, code, dtype=np.int8),
                np.asarray(ts, dtype=np.int64),
                np.full(n, -1, np.int64) if quantity is None else np.asarray(quantity, np.int64),
                np.full(n, np.nan) if price is None else np.asarray(price, dtype=float),
                np.full(n, None, dtype=object) if query is None else np.asarray(query, object),
            )
        )

    def table(self, session_prefix: str, counters: IdCounters) -> dict[str, object]:
        """The day's events in the `events` contract, ordered by time, with fresh event ids."""
        if self.pieces:
            cols = [np.concatenate(c) for c in zip(*self.pieces, strict=True)]
        else:
            cols = [np.zeros(0, dtype=d) for d in _PIECE_DTYPES]
        user, item, code, ts, quantity, price, query = cols
        order = np.lexsort((item, user, code, ts))
        user, item, code, ts = user[order], item[order], code[order], ts[order]
        quantity, price, query = quantity[order], price[order], query[order]
        event_id = counters.event + 1 + np.arange(len(ts), dtype=np.int64)
        counters.event += len(ts)
        user_id = pa.array(user + 1)
        types = pa.DictionaryArray.from_arrays(pa.array(code), pa.array(EVENT_TYPES))
        return {
            "event_id": event_id,
            "user_id": user_id,
            "item_id": pa.array(item + 1, mask=item < 0),
            "event_type": types.cast(pa.string()),
            "event_ts": ts,
            "session_id": pc.binary_join_element_wise(session_prefix, user_id.cast("string"), ""),
            "quantity": pa.array(quantity, mask=quantity < 0, type=pa.int32()),
            "price": pa.array(price, mask=np.isnan(price)),
            "query_text": query,
        }


class ShopBehaviour:
    """Simulates the shoppers of one shop, a day at a time."""

    def __init__(self, config: ShopConfig, catalog: Catalog, users: Users):
        self.config = config
        self.catalog = catalog
        self.users = users
        self.start_us = epoch_day(config.start_date) * DAY_US
        self.end_us = self.start_us + config.days * DAY_US
        self.line_rate = 1.0 / ((1.0 + EXTRA_UNITS) * (1.0 - config.cancel_rate))
        hourly = np.array(HOURLY_PROFILE)
        self.hourly = hourly / hourly.sum()
        specs = CATEGORIES[: config.categories]
        self.brand_names = np.array([b for s in specs for b in s.brands], dtype=object)
        self.brand_category = np.repeat(np.arange(len(specs)), 4)
        self.category_names = np.array([s.name for s in specs], dtype=object)
        self.unmet_terms = np.array([term for term, _ in UNMET_TERMS], dtype=object)
        self.unmet_growth = np.array([growth for _, growth in UNMET_TERMS])

    def simulate(self, demand: DemandDay, on_hand: np.ndarray, ids: IdCounters) -> DayOutput:
        """All behaviour of `demand.day`, given the stock on the shelf at the start of it."""
        day = demand.day
        rng = self.config.rng(STREAM_DAY, day)
        day_start = self.start_us + day * DAY_US
        ymd = (self.config.start_date + datetime.timedelta(days=day)).strftime("%Y%m%d")
        events = _EventParts()
        order_lines, reviews, sold = self._purchases(rng, demand, on_hand, day_start, events, ids)
        self._browsing(rng, demand, on_hand, day_start, events)
        self._searches(rng, demand, day_start, events)
        return DayOutput(events.table(f"s{ymd}-", ids), order_lines, reviews, sold)

    def _time_of_day(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """µs after midnight, following the intraday traffic profile."""
        hour = rng.choice(24, size=n, p=self.hourly)
        return hour * HOUR_US + rng.integers(0, HOUR_US, size=n)

    def _purchases(
        self,
        rng: np.random.Generator,
        demand: DemandDay,
        on_hand: np.ndarray,
        day_start: int,
        events: _EventParts,
        ids: IdCounters,
    ) -> tuple[dict[str, object], dict[str, object], np.ndarray]:
        """Order lines (cut to stock), their purchase/view/cart events, reviews, units sold."""
        c = self.catalog
        n_lines = rng.poisson(demand.expected_units * self.line_rate)
        item = np.repeat(np.arange(c.size), n_lines)
        n = item.size
        wanted = 1 + rng.poisson(EXTRA_UNITS, size=n)
        user = self.users.draw(rng, c.category[item], demand.day)
        joins = np.nonzero(rng.random(n) < self.config.basket_share)[0]
        if n > 1 and joins.size:
            user[joins] = user[rng.integers(0, n, size=joins.size)]
        shoppers, order_of_line = np.unique(user, return_inverse=True)
        order_ts = day_start + self._time_of_day(rng, shoppers.size)
        ts = order_ts[order_of_line]

        # First come, first served: cut lines once the item's start-of-day stock is gone.
        by_item = np.lexsort((user, ts, item))
        it, q = item[by_item], wanted[by_item]
        cum = np.cumsum(q)
        starts = np.ones(n, dtype=bool)
        starts[1:] = it[1:] != it[:-1]
        first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        before = (cum - q) - (cum[first] - q[first])
        quantity = np.empty(n, dtype=np.int64)
        quantity[by_item] = np.clip(on_hand[it] - before, 0, q)
        sold = np.bincount(item, weights=quantity, minlength=c.size).astype(np.int64)

        # The shopper looked at every item they meant to buy; carts only for what was in stock.
        offset_cart = rng.integers(MINUTE_US // 2, 5 * MINUTE_US, size=n)
        offset_view = offset_cart + rng.integers(MINUTE_US, 25 * MINUTE_US, size=n)
        viewed = rng.random(n) < VIEW_BEFORE_BUY
        carted = (rng.random(n) < CART_BEFORE_BUY) & (quantity > 0)
        price = demand.price[item]
        view_ts = np.maximum(ts - offset_view, day_start)
        cart_ts = np.maximum(ts - offset_cart, day_start)
        events.add(user[viewed], item[viewed], VIEW, view_ts[viewed], price=price[viewed])
        events.add(
            user[carted], item[carted], CART, cart_ts[carted], quantity[carted], price[carted]
        )

        # An order holds one line per item: a shopper's lines of the same item are merged.
        kept = np.nonzero(quantity > 0)[0]
        line_key = order_of_line[kept] * c.size + item[kept]
        _, first, merged_into = np.unique(line_key, return_index=True, return_inverse=True)
        keep = kept[first]
        units = np.bincount(merged_into, weights=quantity[kept]).astype(np.int64)
        orders = np.unique(order_of_line[keep])
        rank = np.empty(shoppers.size, dtype=np.int64)
        rank[orders[np.lexsort((shoppers[orders], order_ts[orders]))]] = np.arange(orders.size)
        order_id = ids.order + 1 + rank[order_of_line[keep]]
        ids.order += orders.size
        cfg = self.config
        completed = max(1.0 - cfg.cancel_rate - cfg.return_rate, 0.0)
        status_p = np.array([completed, cfg.cancel_rate, cfg.return_rate])
        status_p /= status_p.sum()
        order_status = rng.choice(3, size=shoppers.size, p=status_p)
        status = order_status[order_of_line[keep]]
        line_order = np.lexsort((item[keep], order_id))
        keep, order_id, status = keep[line_order], order_id[line_order], status[line_order]
        units = units[line_order]
        events.add(user[keep], item[keep], PURCHASE, ts[keep], units, price[keep])
        order_lines = {
            "order_id": order_id,
            "user_id": user[keep] + 1,
            "item_id": item[keep] + 1,
            "quantity": units,
            "unit_price": price[keep],
            "order_ts": ts[keep],
            "status": np.array(ORDER_STATUSES, dtype=object)[status],
        }
        reviews = self._reviews(rng, user[keep], item[keep], ts[keep], status, ids)
        return order_lines, reviews, sold

    def _reviews(
        self,
        rng: np.random.Generator,
        user: np.ndarray,
        item: np.ndarray,
        ts: np.ndarray,
        status: np.ndarray,
        ids: IdCounters,
    ) -> dict[str, object]:
        """Some non-cancelled lines get a review days later; rating follows latent quality."""
        writes = (status != CANCELLED) & (rng.random(item.size) < self.config.review_rate)
        delay = (DAY_US * (1.0 + rng.gamma(2.0, 3.0, size=item.size))).astype(np.int64)
        noise = rng.normal(0.0, 0.8, size=item.size)
        score = 3.9 + 0.9 * self.catalog.quality[item] + noise - 1.5 * (status == RETURNED)
        rating = np.clip(np.rint(score), 1, 5).astype(np.int64)
        review_ts = ts + delay
        take = np.nonzero(writes & (review_ts < self.end_us))[0]
        text = review_texts(rng, rating[take], self.catalog.noun[item[take]])
        review_id = ids.review + 1 + np.arange(take.size, dtype=np.int64)
        ids.review += take.size
        return {
            "review_id": review_id,
            "user_id": user[take] + 1,
            "item_id": item[take] + 1,
            "rating": rating[take],
            "review_text": text,
            "review_ts": review_ts[take],
        }

    def _browsing(
        self,
        rng: np.random.Generator,
        demand: DemandDay,
        on_hand: np.ndarray,
        day_start: int,
        events: _EventParts,
    ) -> None:
        """Views that follow the leading interest; some turn into carts or favourites."""
        c = self.catalog
        n_views = rng.poisson(self.config.views_per_unit * demand.browse_interest)
        item = np.repeat(np.arange(c.size), n_views)
        n = item.size
        user = self.users.draw(rng, c.category[item], demand.day)
        ts = day_start + self._time_of_day(rng, n)
        price = demand.price[item]
        events.add(user, item, VIEW, ts, price=price)
        day_end = day_start + DAY_US - 1
        carted = (rng.random(n) < self.config.cart_rate) & (on_hand[item] > 0)
        cart_ts = np.minimum(ts + rng.integers(MINUTE_US // 2, 10 * MINUTE_US, size=n), day_end)
        ones = np.ones(n, dtype=np.int64)
        events.add(user[carted], item[carted], CART, cart_ts[carted], ones[carted], price[carted])
        faved = rng.random(n) < self.config.favorite_rate
        fav_ts = np.minimum(ts + rng.integers(MINUTE_US // 5, 5 * MINUTE_US, size=n), day_end)
        events.add(user[faved], item[faved], FAVORITE, fav_ts[faved], price=price[faved])

    def _searches(
        self, rng: np.random.Generator, demand: DemandDay, day_start: int, events: _EventParts
    ) -> None:
        """Searches for categories and brands (following interest) and for unmet terms."""
        c, cfg = self.catalog, self.config
        interest = demand.browse_interest
        per_unit = cfg.searches_per_unit
        cat_mean = (
            per_unit
            * CATEGORY_SEARCH_SHARE
            * np.bincount(c.category, weights=interest, minlength=len(self.category_names))
        )
        brand_mean = (
            per_unit
            * (1 - CATEGORY_SEARCH_SHARE)
            * np.bincount(c.brand_index, weights=interest, minlength=len(self.brand_names))
        )
        progress = demand.day / max(cfg.days - 1, 1) - 0.5
        unmet_weight = np.exp(self.unmet_growth * progress)
        unmet_weight /= unmet_weight.size  # weights sum to 1 mid-period
        odds = cfg.unmet_search_share / (1.0 - cfg.unmet_search_share)
        unmet_mean = odds * per_unit * interest.sum() * unmet_weight

        cat = np.repeat(np.arange(cat_mean.size), rng.poisson(cat_mean))
        brand = np.repeat(np.arange(brand_mean.size), rng.poisson(brand_mean))
        unmet = np.repeat(np.arange(unmet_mean.size), rng.poisson(unmet_mean))
        terms = np.concatenate(
            [self.category_names[cat], self.brand_names[brand], self.unmet_terms[unmet]]
        )
        group = np.concatenate(
            [cat, self.brand_category[brand], np.full(unmet.size, self.users.any_category)]
        )
        user = self.users.draw(rng, group, demand.day)
        ts = day_start + self._time_of_day(rng, terms.size)
        none = np.full(terms.size, -1)
        events.add(user, none, SEARCH, ts, query=noisy_queries(rng, terms))
