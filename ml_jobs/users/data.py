"""What the user models read: labelled cutoffs, event sequences as of a cutoff, Feast features.

Everything is point-in-time. For a cutoff C (midnight UTC starting day D):
- labels come from `ml.ml_user_propensity_labels` (dbt), the window D .. D + window - 1;
- sequences are each user's last `max_len` events with event_ts < C from
  `staging.stg_shop__events`;
- static features are the `propensity_v1` Feast service joined at C (snapshots of days < D);
- item and category targets are the user's events in [C, C + window), used only for training
  and scoring, never as inputs.

Events are held in memory sorted by (user, time) as numpy arrays, so a cutoff's sequences are
one searchsorted and one gather, for all users at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml_jobs.config import Paths
from ml_jobs.sources import input_target, reader

FEATURE_SERVICE = "propensity_v1"
EVENT_TYPES = ("pad", "view", "search", "favorite", "cart", "purchase")
PURCHASE = EVENT_TYPES.index("purchase")
LABEL_TABLE = "ml.ml_user_propensity_labels"
_SHIFT = np.int64(1 << 32)  # key = user_id * 2^32 + seconds since the first event


class MissingTrainingDataError(RuntimeError):
    """The warehouse lacks what the user models read; the message says which step to run."""


@dataclass(frozen=True)
class Catalog:
    """Items as dense indices: index 0 is padding, item index i has item_ids[i - 1]."""

    item_ids: np.ndarray  # (n_items,) int64
    category_ids: np.ndarray  # (n_categories,) int64, category index c has category_ids[c - 1]
    item_category: np.ndarray  # (n_items + 1,) category index of every item index, 0 for pad

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_categories(self) -> int:
        return len(self.category_ids)


@dataclass(frozen=True)
class EventLog:
    """All events sorted by (user, time); items and categories as dense indices."""

    user: np.ndarray  # user_id (int32 when every id fits, else int64)
    seconds: np.ndarray  # int32 seconds since `origin` (int64 past 68 years)
    item: np.ndarray  # int32 item index, 0 for searches
    category: np.ndarray  # int32 category index, 0 for searches
    kind: np.ndarray  # int8 index into EVENT_TYPES
    price: np.ndarray  # float64, 0 when missing
    origin: pd.Timestamp  # UTC timestamp of seconds == 0
    last_day: dt.date  # newest day with data

    @property
    def key(self) -> np.ndarray:
        return self.user * _SHIFT + self.seconds

    def to_seconds(self, ts: pd.Timestamp) -> int:
        return int((ts - self.origin).total_seconds())

    def positions(self, users: np.ndarray, ts: pd.Timestamp | np.ndarray) -> np.ndarray:
        """Index of each user's first event at or after `ts` (the end of their history)."""
        if isinstance(ts, pd.Timestamp):
            sec = np.full(len(users), self.to_seconds(ts), dtype=np.int64)
        else:
            sec = np.asarray(ts, dtype=np.int64)
        return np.searchsorted(self.key, users.astype(np.int64) * _SHIFT + sec, side="left")


@dataclass(frozen=True)
class Sequences:
    """Each row's last events before its cutoff, right-aligned and zero-padded."""

    item: np.ndarray  # (n, L) int64
    category: np.ndarray  # (n, L) int64
    kind: np.ndarray  # (n, L) int64
    log_gap_hours: np.ndarray  # (n, L) float32, log1p(hours before the cutoff)
    log_price: np.ndarray  # (n, L) float32
    history_events: np.ndarray  # (n,) int64, all events before the cutoff
    history: np.ndarray  # (n, 3) float32: log1p of events, purchases and tenure days before it


def require_warehouse(paths: Paths, target: str | None = None) -> None:
    """The DuckDB warehouse must exist when the inputs are read from it."""
    if input_target(target) == "duckdb" and not paths.warehouse.exists():
        raise MissingTrainingDataError(
            f"no warehouse at {paths.warehouse}: run `basketcast build` (and `basketcast "
            "features`) before the user models"
        )


def load_catalog(paths: Paths, target: str | None = None) -> Catalog:
    """The item catalogue, read from where `target` built the warehouse (ml_jobs.sources)."""
    require_warehouse(paths, target)
    with reader(paths, target) as source:
        items = source.frame(
            "SELECT item_id, category_id FROM staging.stg_shop__items ORDER BY item_id"
        )
    if items.empty:
        raise MissingTrainingDataError("staging.stg_shop__items is empty: run `basketcast build`")
    category_ids = np.sort(items["category_id"].unique()).astype(np.int64)
    cat_index = np.searchsorted(category_ids, items["category_id"].to_numpy()) + 1
    return Catalog(
        item_ids=items["item_id"].to_numpy(np.int64),
        category_ids=category_ids,
        item_category=np.concatenate([[0], cat_index]).astype(np.int64),
    )


def load_events(
    paths: Paths, catalog: Catalog, batch_rows: int = 1_000_000, target: str | None = None
) -> EventLog:
    """Every clean event, sorted by user and time (events of unknown items count as searches).

    Streamed `batch_rows` at a time into arrays sized once, as compact as the data allows
    (see EventLog), so the load needs little more memory than the log it returns."""
    # The event type comes back as its index into EVENT_TYPES (0 for an unknown type), so no
    # Python string is made per event.
    kinds = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(EVENT_TYPES) if i)
    with reader(paths, target) as source:
        epoch_us = source.epoch_us("event_ts")
        n, first_us, last_us, low_user, high_user = source.rows(
            f"""SELECT count(*), min({epoch_us}), max({epoch_us}), min(user_id), max(user_id)
            FROM staging.stg_shop__events"""
        )[0]
        if not n:
            raise MissingTrainingDataError(
                "staging.stg_shop__events is empty: run `basketcast build`"
            )
        origin_us = int(first_us) // 86_400_000_000 * 86_400_000_000
        user = np.empty(n, dtype=_int_type(low_user, high_user))
        seconds = np.empty(n, dtype=_int_type(0, (int(last_us) - origin_us) // 1_000_000))
        item = np.empty(n, dtype=np.int32)
        kind = np.empty(n, dtype=np.int8)
        price = np.empty(n, dtype=np.float64)
        stream = source.batches(
            f"""SELECT user_id, {epoch_us} AS ts_us, coalesce(item_id, -1) AS item_id,
                   CAST(coalesce(CASE event_type {kinds} END, 0) AS TINYINT) AS kind,
                   coalesce(price, 0) AS price
            FROM staging.stg_shop__events ORDER BY user_id, event_ts, event_id""",
            batch_rows,
        )
        at = 0
        for batch in stream:
            part = slice(at, at + batch.num_rows)
            columns = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
            user[part], ts_us, raw_item, kind[part], price[part] = columns
            seconds[part] = (ts_us - origin_us) // 1_000_000
            item[part] = _item_index(catalog, raw_item)
            at = part.stop
    return EventLog(
        user=user,
        seconds=seconds,
        item=item,
        category=catalog.item_category[item].astype(np.int32),
        kind=kind,
        price=price,
        origin=pd.Timestamp(origin_us, unit="us", tz="UTC"),
        last_day=pd.Timestamp(int(last_us), unit="us", tz="UTC").date(),
    )


def _item_index(catalog: Catalog, raw_item: np.ndarray) -> np.ndarray:
    """Dense item index of each item_id, 0 for a search or an item not in the catalogue."""
    pos = np.searchsorted(catalog.item_ids, raw_item)
    known = (pos < catalog.n_items) & (
        catalog.item_ids[np.minimum(pos, catalog.n_items - 1)] == raw_item
    )
    return np.where(known, pos + 1, 0)


def _int_type(low: int, high: int) -> type[np.signedinteger]:
    """int32 when every value in [low, high] fits (half the memory of int64), else int64."""
    info = np.iinfo(np.int32)
    return np.int32 if info.min <= int(low) and int(high) <= info.max else np.int64


def load_labels(paths: Paths, target: str | None = None) -> pd.DataFrame:
    """The dbt training set: user_id, cutoff_date, cutoff_ts, purchased, spend, ..."""
    with reader(paths, target) as source:
        if not source.exists(LABEL_TABLE):
            raise MissingTrainingDataError(
                f"{LABEL_TABLE} is missing from {source.where}: run `basketcast build` "
                "(dbt builds models/ml)"
            )
        frame = source.frame(f"SELECT * FROM {LABEL_TABLE} ORDER BY cutoff_date, user_id")
    frame["cutoff_date"] = pd.to_datetime(frame["cutoff_date"]).dt.date
    frame["cutoff_ts"] = pd.to_datetime(frame["cutoff_ts"], utc=True)
    return frame


def scoring_population(events: EventLog, cutoff: pd.Timestamp, active_days: int) -> np.ndarray:
    """User ids with any event in the `active_days` before `cutoff`: whom a prediction scores."""
    end = events.to_seconds(cutoff)
    start = end - active_days * 86_400
    seen = (events.seconds >= start) & (events.seconds < end)
    return np.unique(events.user[seen]).astype(np.int64)


def sequences(
    events: EventLog, users: np.ndarray, cutoffs: pd.Series | pd.Timestamp, max_len: int
) -> Sequences:
    """The last `max_len` events of each (user, cutoff) row strictly before the cutoff."""
    users = np.asarray(users, dtype=np.int64)
    if isinstance(cutoffs, pd.Timestamp):
        cut_sec = np.full(len(users), events.to_seconds(cutoffs), dtype=np.int64)
    else:
        delta = pd.to_datetime(cutoffs, utc=True) - events.origin
        cut_sec = (delta.dt.total_seconds()).to_numpy().astype(np.int64)
    end = events.positions(users, cut_sec)
    start = events.positions(users, np.zeros(len(users), dtype=np.int64) - (1 << 31))
    idx = end[:, None] - max_len + np.arange(max_len)[None, :]
    valid = idx >= start[:, None]
    safe = np.where(valid, idx, 0)
    gap_hours = (cut_sec[:, None] - events.seconds[safe]) / 3600.0
    return Sequences(
        item=np.where(valid, events.item[safe], 0).astype(np.int64),
        category=np.where(valid, events.category[safe], 0).astype(np.int64),
        kind=np.where(valid, events.kind[safe], 0).astype(np.int64),
        log_gap_hours=np.where(valid, np.log1p(np.maximum(gap_hours, 0.0)), 0.0).astype(np.float32),
        log_price=np.where(valid, np.log1p(events.price[safe]), 0.0).astype(np.float32),
        history_events=end - start,
        history=_history_summary(events, start, end, cut_sec),
    )


def _history_summary(
    events: EventLog, start: np.ndarray, end: np.ndarray, cut_sec: np.ndarray
) -> np.ndarray:
    """log1p of (all events, all purchases, days since the first event) before each cutoff."""
    purchases = np.concatenate([[0], np.cumsum(events.kind == PURCHASE)])
    seen = end > start
    first = events.seconds[np.minimum(start, len(events.seconds) - 1)]
    tenure = np.where(seen, (cut_sec - first) / 86_400.0, 0.0)
    summary = np.stack([end - start, purchases[end] - purchases[start], tenure], axis=1)
    return np.log1p(np.maximum(summary, 0.0)).astype(np.float32)


def _cut_seconds(events: EventLog, n: int, cutoffs: pd.Series | pd.Timestamp) -> np.ndarray:
    if isinstance(cutoffs, pd.Timestamp):
        return np.full(n, events.to_seconds(cutoffs), dtype=np.int64)
    delta = pd.to_datetime(cutoffs, utc=True) - events.origin
    return (delta.dt.total_seconds()).to_numpy().astype(np.int64)


def event_rows(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, event index) of every event in [start[r], end[r]) for each row r, in order."""
    counts = np.maximum(np.asarray(end, dtype=np.int64) - start, 0)
    row = np.repeat(np.arange(len(counts)), counts)
    offset = np.cumsum(counts) - counts
    idx = np.arange(len(row), dtype=np.int64) - offset[row] + np.asarray(start, np.int64)[row]
    return row, idx


def _counts(row: np.ndarray, col: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Sparse float32 matrix of how often each (row, col) pair occurs."""
    data = np.ones(len(row), dtype=np.float32)
    out = sp.coo_matrix((data, (row, col)), shape=shape).tocsr()
    out.sum_duplicates()
    return out


def user_item_history(
    events: EventLog,
    users: np.ndarray,
    cutoffs: pd.Series | pd.Timestamp,
    n_items: int,
    recent_days: int = 28,
) -> sp.csr_matrix:
    """Sparse (n, 2 * n_items) float32: columns [0, n_items) hold log1p of each user's
    purchases of each item before the cutoff, columns [n_items, 2 * n_items) log1p of their
    events on each item in the `recent_days` before it. `.toarray().reshape(n, 2, n_items)`
    of a batch gives the dense layout the network reads."""
    users = np.asarray(users, dtype=np.int64)
    cut_sec = _cut_seconds(events, len(users), cutoffs)
    end = events.positions(users, cut_sec)
    start = events.positions(users, np.zeros(len(users), dtype=np.int64) - (1 << 31))
    row, idx = event_rows(start, end)
    item = events.item[idx]
    bought = (events.kind[idx] == PURCHASE) & (item > 0)
    recent = (item > 0) & (events.seconds[idx] >= cut_sec[row] - recent_days * 86_400)
    out = _counts(
        np.concatenate([row[bought], row[recent]]),
        np.concatenate([item[bought] - 1, n_items + item[recent] - 1]),
        (len(users), 2 * n_items),
    )
    out.data = np.log1p(out.data)
    return out


def window_targets(
    events: EventLog,
    users: np.ndarray,
    cutoffs: pd.Series | pd.Timestamp,
    window_days: int,
    n_items: int,
    n_categories: int,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Per row: purchased-item counts (sparse (n, n_items) float32) and item-event category
    counts (dense (n, n_categories) float32) in [cutoff, cutoff + window). Columns are dense
    index - 1."""
    users = np.asarray(users, dtype=np.int64)
    cut_sec = _cut_seconds(events, len(users), cutoffs)
    lo = events.positions(users, cut_sec)
    hi = events.positions(users, cut_sec + window_days * 86_400)
    row, idx = event_rows(lo, hi)
    has_item = events.item[idx] > 0
    bought = has_item & (events.kind[idx] == PURCHASE)
    items = _counts(row[bought], events.item[idx[bought]] - 1, (len(users), n_items))
    cats = np.zeros((len(users), n_categories), dtype=np.float32)
    np.add.at(cats, (row[has_item], events.category[idx[has_item]] - 1), 1.0)
    return items, cats


def purchased_before(
    events: EventLog, users: np.ndarray, cutoff: pd.Timestamp, n_items: int
) -> sp.csr_matrix:
    """Sparse (n, n_items) bool: items each user purchased at any time before `cutoff`."""
    users = np.asarray(users, dtype=np.int64)
    end = events.positions(users, cutoff)
    start = events.positions(users, np.zeros(len(users), dtype=np.int64) - (1 << 31))
    row, idx = event_rows(start, end)
    bought = (events.kind[idx] == PURCHASE) & (events.item[idx] > 0)
    out = _counts(row[bought], events.item[idx[bought]] - 1, (len(users), n_items))
    return out.astype(bool)


def ever_purchased(events: EventLog, users: np.ndarray, cutoff: pd.Timestamp) -> np.ndarray:
    """(n,) bool: whether each user purchased any known item before `cutoff`."""
    users = np.asarray(users, dtype=np.int64)
    purchases = np.concatenate([[0], np.cumsum((events.kind == PURCHASE) & (events.item > 0))])
    end = events.positions(users, cutoff)
    start = events.positions(users, np.zeros(len(users), dtype=np.int64) - (1 << 31))
    return purchases[end] > purchases[start]


def item_popularity(events: EventLog, cutoff: pd.Timestamp, days: int, n_items: int) -> np.ndarray:
    """Purchase events per item (dense index - 1) in the `days` before `cutoff`."""
    end = events.to_seconds(cutoff)
    mask = (
        (events.seconds < end)
        & (events.seconds >= end - days * 86_400)
        & (events.kind == PURCHASE)
        & (events.item > 0)
    )
    return np.bincount(events.item[mask] - 1, minlength=n_items).astype(np.float64)


def user_features(
    paths: Paths,
    users: np.ndarray,
    cutoffs: pd.Series | pd.Timestamp,
    batch_rows: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    offline: str = "duckdb",
) -> pd.DataFrame:
    """`propensity_v1` features joined point-in-time at each row's cutoff (Feast), fetched at
    most `batch_rows` rows at a time from the `offline` store (see
    ml_jobs.features.historical_features)."""
    from ml_jobs.features import historical_features

    stamps = (
        pd.Series(cutoffs, index=range(len(users)))
        if isinstance(cutoffs, pd.Timestamp)
        else pd.to_datetime(pd.Series(cutoffs).reset_index(drop=True), utc=True)
    )
    entity_df = pd.DataFrame(
        {"user_id": np.asarray(users, dtype=np.int64), "event_timestamp": stamps}
    )
    return historical_features(
        paths,
        entity_df,
        FEATURE_SERVICE,
        offline=offline,
        batch_rows=batch_rows,
        on_batch=on_batch,
    )
