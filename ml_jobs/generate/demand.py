"""True demand and the stock that censors it.

`DemandModel` gives, for every item and day, the expected units shoppers want (the truth the
forecasts are scored against):

    λ = base × weekly(category, weekday) × yearly(category, day of year) × trend × launch ramp
        × promo lift × (1 − discount)^−elasticity × exp(z_t − σ²/2)

where z is an AR(1) latent interest per item. Browsing follows the interest of day
t + `behaviour_lead_days`, so views, carts and searches move before purchases do.

`Inventory` runs a periodic (s, S) replenishment policy with supplier lead times and short
deliveries; an item with no stock at the start of a day sells nothing that day.
"""

from __future__ import annotations

import datetime
from collections import deque
from dataclasses import dataclass

import numpy as np

from ml_jobs.generate.catalog import Catalog, Promotions
from ml_jobs.generate.shop_config import STREAM_INTEREST, STREAM_INVENTORY, ShopConfig

INTEREST_PHI = 0.9  # day-to-day persistence of the latent interest
INTEREST_SD = 0.35  # stationary standard deviation of log interest
DEMAND_SD_FACTOR = 1.5  # the planner's allowance for demand noise beyond Poisson


@dataclass(frozen=True)
class DemandDay:
    """Everything about one day's demand, per item."""

    day: int
    launched: np.ndarray  # bool, item is on sale (launch day reached)
    discount: np.ndarray  # fraction 0..1 off the base price
    price: np.ndarray  # price shown and paid that day
    expected_units: np.ndarray  # λ: true mean units demanded (0 before launch)
    browse_interest: np.ndarray  # λ with the interest of day t + lead: what browsing follows


class DemandModel:
    """Yields `DemandDay`s in order, carrying the AR(1) latent interest forward."""

    def __init__(self, config: ShopConfig, catalog: Catalog, promotions: Promotions):
        self.config = config
        self.catalog = catalog
        self.promotions = promotions
        lead = config.behaviour_lead_days
        dates = [config.start_date + datetime.timedelta(days=t) for t in range(config.days)]
        self._weekday = np.array([d.weekday() for d in dates])
        self._day_of_year = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        self._interest: deque[np.ndarray] = deque()
        self._interest_day = -1
        while len(self._interest) < lead + 1:
            self._advance_interest()

    def _advance_interest(self) -> None:
        """Draw the latent interest of the next day; each day has its own random stream."""
        self._interest_day += 1
        rng = self.config.rng(STREAM_INTEREST, self._interest_day)
        noise = rng.normal(0.0, 1.0, size=self.catalog.size)
        if self._interest:
            previous = self._interest[-1]
            z = INTEREST_PHI * previous + np.sqrt(1 - INTEREST_PHI**2) * INTEREST_SD * noise
        else:
            z = INTEREST_SD * noise
        self._interest.append(z)

    def planning_rate(self, day: int) -> np.ndarray:
        """Units/day the replenishment planner expects: the slow parts of demand (base, trend,
        launch ramp, yearly season), grossed up for orders that will be cancelled."""
        c = self.catalog
        slow = c.base_demand * self._trend(day) * self._ramp(day)
        slow = slow * self._yearly(day)[c.category]
        return slow / (1.0 - self.config.cancel_rate)

    def day(self, day: int) -> DemandDay:
        """Demand of `day`; call with day = 0, 1, 2, ... in order."""
        if day != self._interest_day - self.config.behaviour_lead_days:
            raise ValueError(f"DemandModel.day must be called in order; expected day {day}")
        c = self.catalog
        discount = self.promotions.discount_on(day)
        promo = np.where(discount > 0, c.promo_lift * (1.0 - discount) ** -c.elasticity, 1.0)
        season = c.weekly[c.category, self._weekday[day]] * self._yearly(day)[c.category]
        level = c.base_demand * season * self._trend(day) * self._ramp(day) * promo
        half_var = INTEREST_SD**2 / 2
        expected = level * np.exp(self._interest[0] - half_var)
        browse = level * np.exp(self._interest[-1] - half_var)
        self._interest.popleft()
        self._advance_interest()
        return DemandDay(
            day=day,
            launched=c.launch_day <= day,
            discount=discount,
            price=np.round(c.base_price * (1.0 - discount), 2),
            expected_units=expected,
            browse_interest=browse,
        )

    def _trend(self, day: int) -> np.ndarray:
        years_from_middle = (day - self.config.days / 2) / 365.0
        return np.exp(self.catalog.trend_per_year * years_from_middle)

    def _ramp(self, day: int) -> np.ndarray:
        age = day - self.catalog.launch_day
        ramp = 1.0 - np.exp(-(age + 1) / self.catalog.ramp_days)
        return np.where(age >= 0, ramp, 0.0)

    def _yearly(self, day: int) -> np.ndarray:
        c = self.catalog
        phase = 2 * np.pi * (self._day_of_year[day] - c.yearly_peak) / 365.25
        return 1.0 + c.yearly_amplitude * np.cos(phase)


class Inventory:
    """On-hand stock per item under an (s, S) policy, reviewed at the end of every day.

    Reorder point s covers lead-time demand plus `safety_k` standard deviations (under-stocked
    items have a low or negative k); an order brings the inventory position up to S = s plus
    `review_days` of demand. Deliveries arrive overnight, before the start-of-day snapshot; a
    share of them arrive short.
    """

    def __init__(self, config: ShopConfig, catalog: Catalog):
        self.config = config
        self.catalog = catalog
        n = catalog.size
        self._slots = int(catalog.lead_time_days.max()) + 1
        self.on_hand = np.zeros(n, dtype=np.int64)
        self.on_order = np.zeros(n, dtype=np.int64)
        self._ordered = np.zeros((self._slots, n), dtype=np.int64)
        self._delivered = np.zeros((self._slots, n), dtype=np.int64)
        self._stocked = np.zeros(n, dtype=bool)

    def open_day(self, day: int, plan_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Receive today's deliveries, stock newly launched items; return (on_hand, on_order)."""
        slot = day % self._slots
        self.on_hand += self._delivered[slot]
        self.on_order -= self._ordered[slot]
        self._delivered[slot] = 0
        self._ordered[slot] = 0

        new = ~self._stocked & (self.catalog.launch_day <= day)
        if new.any():
            rng = self.config.rng(STREAM_INVENTORY, day, 0)
            _, order_up_to = self._policy(plan_rate)
            fill = np.where(self.catalog.launch_day < day, rng.uniform(0.4, 1.0, new.size), 1.0)
            self.on_hand[new] = np.ceil(order_up_to[new] * fill[new]).astype(np.int64)
            self._stocked |= new
        return self.on_hand.copy(), self.on_order.copy()

    def close_day(self, day: int, sold: np.ndarray, plan_rate: np.ndarray) -> None:
        """Take today's sales off the shelf and place replenishment orders where needed."""
        if np.any(sold > self.on_hand):
            raise AssertionError("sold more than on hand")  # a generator bug, never data
        self.on_hand -= sold
        reorder_point, order_up_to = self._policy(plan_rate)
        position = self.on_hand + self.on_order
        need = np.nonzero(self._stocked & (position <= reorder_point))[0]
        if need.size == 0:
            return
        rng = self.config.rng(STREAM_INVENTORY, day, 1)
        quantity = order_up_to[need] - position[need]
        short = rng.random(need.size) < self.config.supplier_shortfall_rate
        delivered = np.where(short, np.floor(quantity * rng.uniform(0.0, 0.6, need.size)), quantity)
        arrival = (day + self.catalog.lead_time_days[need]) % self._slots
        self._ordered[arrival, need] += quantity
        self._delivered[arrival, need] += delivered.astype(np.int64)
        self.on_order[need] += quantity

    def _policy(self, plan_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.catalog
        lead_demand = plan_rate * c.lead_time_days
        spread = DEMAND_SD_FACTOR * np.sqrt(lead_demand)
        reorder_point = np.maximum(np.ceil(lead_demand + c.safety_k * spread), 0).astype(np.int64)
        order_up_to = reorder_point + np.ceil(plan_rate * c.review_days).astype(np.int64) + 1
        return reorder_point, order_up_to
