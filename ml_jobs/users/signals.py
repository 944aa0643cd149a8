"""Hand-built signals of each user's history at a cutoff, for every (user, cutoff) row at once.

The shop's own logic motivates them: a shopper buys at a steady personal rate, spread over the
categories they like, and an item's next-week sales follow its recent sales and the browsing
that runs ahead of them. So the sequence model also reads

- `activity`: per event type, log1p counts in the last 1, 7, 28, 90 days and ever, spend in the
  same windows, the lifetime rate per day of tenure, and log1p hours since the newest event of
  each type (with a never-seen flag) and tenure;
- `category_share`: the user's share of every category's item events over the same span
  (their last 28 days, and everything since their first event up to 180 days): how much of a
  category's traffic is theirs, which times the category's sales is what they are expected to
  buy of it;
- `item_signals`: per cutoff and item, log1p purchases in the last 7 and 28 days and log1p views
  in the last 3 and 7 days (browsing leads purchases by a few days).

Everything reads events strictly before the cutoff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_jobs.users.data import EVENT_TYPES, PURCHASE, EventLog, event_rows

WINDOWS_DAYS = (1, 7, 28, 90)
SHARE_DAYS = (28, 180)
ITEM_SIGNALS = ("purchases_7d", "purchases_28d", "views_3d", "views_7d")
_DAY = 86_400
_NEVER_HOURS = 24 * 365.0


def cutoff_seconds(
    events: EventLog, n: int, cutoffs: pd.Series | pd.Timestamp | np.ndarray
) -> np.ndarray:
    """Seconds since `events.origin` of each row's cutoff."""
    if isinstance(cutoffs, pd.Timestamp):
        return np.full(n, events.to_seconds(cutoffs), dtype=np.int64)
    delta = pd.to_datetime(pd.Series(cutoffs), utc=True) - events.origin
    return delta.dt.total_seconds().to_numpy().astype(np.int64)


def _bounds(events: EventLog, users: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, ...]:
    end = events.positions(users, cut)
    start = events.positions(users, np.full(len(users), -(1 << 31), dtype=np.int64))
    return start, end


def activity_width() -> int:
    n_types = len(EVENT_TYPES) - 1
    return (len(WINDOWS_DAYS) + 1) * (n_types + 1) + n_types + 2 * n_types + 1


def activity(events: EventLog, users: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """(n, activity_width()) float32, see the module doc."""
    users = np.asarray(users, dtype=np.int64)
    start, end = _bounds(events, users, cut)
    n_events, n_types = len(events.kind), len(EVENT_TYPES)
    onehot = np.zeros((n_events + 1, n_types), dtype=np.float64)
    onehot[np.arange(n_events) + 1, events.kind] = 1.0
    counts_before = np.cumsum(onehot, axis=0)[:, 1:]  # (N + 1, types without padding)
    paid = np.where(events.kind == PURCHASE, events.price, 0.0)
    spend_before = np.concatenate([[0.0], np.cumsum(paid)])
    seen = end > start
    first = events.seconds[np.minimum(start, max(n_events - 1, 0))]
    tenure_days = np.where(seen, (cut - first) / _DAY, 0.0)
    cols: list[np.ndarray] = []
    for days in (*WINDOWS_DAYS, None):
        lo = start
        if days is not None:
            lo = np.maximum(events.positions(users, cut - days * _DAY), start)
        cols.append(np.log1p(counts_before[end] - counts_before[lo]))
        cols.append(np.log1p(spend_before[end] - spend_before[lo])[:, None])
    lifetime = counts_before[end] - counts_before[start]
    cols.append(np.log((lifetime + 0.5) / (np.minimum(tenure_days, 365.0)[:, None] + 7.0)))
    index = np.arange(n_events)
    for kind in range(1, n_types):
        newest = np.maximum.accumulate(np.where(events.kind == kind, index, -1))
        newest = np.concatenate([[-1], newest])[end]
        ok = seen & (newest >= start)
        hours = (cut - events.seconds[np.maximum(newest, 0)]) / 3600.0
        cols.append(np.stack([np.log1p(np.where(ok, hours, _NEVER_HOURS)), ~ok], axis=1))
    cols.append(np.log1p(tenure_days)[:, None])
    return np.concatenate(cols, axis=1).astype(np.float32)


def category_share(
    events: EventLog, users: np.ndarray, cut: np.ndarray, n_categories: int
) -> np.ndarray:
    """(n, len(SHARE_DAYS), C) float32: log of the user's share of each category's item
    events over their last `days` (from their first event at the earliest), smoothed."""
    users = np.asarray(users, dtype=np.int64)
    start, end = _bounds(events, users, cut)
    has_item = events.category > 0
    day = events.seconds // _DAY
    n_days = int(day.max()) + 2 if len(day) else 1
    # Every user's item events per (day, category), cumulated over days: the denominators.
    shop = np.zeros((n_days + 1, n_categories))
    np.add.at(shop, (day[has_item] + 1, events.category[has_item] - 1), 1.0)
    shop = np.cumsum(shop, axis=0)
    first_day = np.where(end > start, day[np.minimum(start, len(day) - 1)], cut // _DAY)
    cut_day = np.clip(cut // _DAY, 0, n_days)
    out = np.zeros((len(users), len(SHARE_DAYS), n_categories), dtype=np.float32)
    for j, days in enumerate(SHARE_DAYS):
        lo = np.maximum(events.positions(users, cut - days * _DAY), start)
        # The user's own item events per category in [lo, end): one pass over those events,
        # (users, categories) memory rather than (all events, categories).
        row, idx = event_rows(lo, end)
        take = has_item[idx]
        flat = row[take] * n_categories + events.category[idx[take]] - 1
        mine = np.bincount(flat, minlength=len(users) * n_categories).astype(np.float64)
        mine = mine.reshape(len(users), n_categories)
        from_day = np.clip(np.maximum(first_day, cut // _DAY - days), 0, n_days)
        total = shop[cut_day] - shop[from_day]
        out[:, j] = np.log((mine + 0.1) / (total + 10.0))
    return out


def item_signals(events: EventLog, cut: int, n_items: int) -> np.ndarray:
    """(n_items, len(ITEM_SIGNALS)) float32 for one cutoff (seconds since origin)."""
    item = events.item > 0
    cols = []
    for name in ITEM_SIGNALS:
        what, days = name.split("_")
        kind = PURCHASE if what == "purchases" else EVENT_TYPES.index("view")
        mask = item & (events.kind == kind) & (events.seconds < cut)
        mask &= events.seconds >= cut - int(days.rstrip("d")) * _DAY
        cols.append(np.log1p(np.bincount(events.item[mask] - 1, minlength=n_items)))
    return np.stack(cols, axis=1).astype(np.float32)
