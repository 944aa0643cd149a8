"""The user models' per-user item matrices are sparse: same numbers as the dense layout on
small data, and memory that grows with events rather than users x items."""

from __future__ import annotations

import datetime as dt
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from ml_jobs.users import baselines, data
from ml_jobs.users.metrics import ranked_metrics, ranking_metrics
from ml_jobs.users.ranking import Ranked, batches
from ml_jobs.users.train import dense_rows


def synthetic_events(n_users: int, n_items: int, per_user: int, seed: int = 0) -> data.EventLog:
    """`per_user` events on average per user over 60 days, sorted by (user, time)."""
    rng = np.random.default_rng(seed)
    n = n_users * per_user
    user = rng.integers(1, n_users + 1, n).astype(np.int64)
    seconds = rng.integers(0, 60 * 86_400, n).astype(np.int64)
    order = np.lexsort((seconds, user))
    item = rng.integers(0, n_items + 1, n).astype(np.int64)  # 0: a search
    kind = np.where(item == 0, 2, rng.choice([1, 3, 4, 5], n, p=[0.6, 0.1, 0.1, 0.2]))
    category = np.where(item > 0, item % 7 + 1, 0).astype(np.int64)
    return data.EventLog(
        user=user[order],
        seconds=seconds[order],
        item=item[order],
        category=category[order],
        kind=kind[order].astype(np.int64),
        price=rng.uniform(1, 50, n)[order],
        origin=pd.Timestamp("2026-01-01", tz="UTC"),
        last_day=dt.date(2026, 3, 1),
    )


def dense_reference(events: data.EventLog, users, cut_sec, window_days, n_items, n_cats):
    """The former dense implementation: (n, 2, I) history, (n, I) targets, (n, C) categories."""
    history = np.zeros((len(users), 2, n_items), dtype=np.float32)
    targets = np.zeros((len(users), n_items), dtype=np.float32)
    cats = np.zeros((len(users), n_cats), dtype=np.float32)
    for r, (u, c) in enumerate(zip(users, cut_sec, strict=True)):
        mine = events.user == u
        it, kd, sec = events.item[mine], events.kind[mine], events.seconds[mine]
        before = sec < c
        np.add.at(history[r, 0], it[before & (kd == 5) & (it > 0)] - 1, 1.0)
        np.add.at(history[r, 1], it[before & (it > 0) & (sec >= c - 28 * 86_400)] - 1, 1.0)
        window = (sec >= c) & (sec < c + window_days * 86_400) & (it > 0)
        np.add.at(targets[r], it[window & (kd == 5)] - 1, 1.0)
        np.add.at(cats[r], events.category[mine][window] - 1, 1.0)
    return np.log1p(history), targets, cats


@pytest.fixture(scope="module")
def small():
    events = synthetic_events(n_users=120, n_items=30, per_user=25)
    users = np.arange(1, 121, dtype=np.int64)
    rng = np.random.default_rng(1)
    cutoffs = pd.Series(
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(5, 50, 120), "D")
    )
    return events, users, cutoffs


def test_sparse_matrices_equal_the_dense_layout(small) -> None:
    events, users, cutoffs = small
    cut_sec = ((cutoffs - events.origin).dt.total_seconds()).to_numpy().astype(np.int64)
    history, targets, cats = dense_reference(events, users, cut_sec, 7, 30, 7)
    got_history = data.user_item_history(events, users, cutoffs, 30)
    got_targets, got_cats = data.window_targets(events, users, cutoffs, 7, 30, 7)
    assert got_history.shape == (120, 60) and got_targets.shape == (120, 30)
    np.testing.assert_allclose(got_history.toarray().reshape(120, 2, 30), history, rtol=1e-6)
    np.testing.assert_array_equal(got_targets.toarray(), targets)
    np.testing.assert_array_equal(got_cats, cats)
    assert targets.sum() > 50 and history[:, 0].sum() > 100  # the data exercises both
    idx = np.array([5, 0, 77])
    np.testing.assert_array_equal(dense_rows(got_targets, idx), targets[idx])


def test_purchased_before_and_exclusion_match_the_dense_layout(small) -> None:
    events, users, _ = small
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    cut = events.to_seconds(cutoff)
    dense = np.zeros((len(users), 30), dtype=bool)
    for r, u in enumerate(users):
        mine = (events.user == u) & (events.seconds < cut) & (events.kind == 5) & (events.item > 0)
        dense[r, events.item[mine] - 1] = True
    got = data.purchased_before(events, users, cutoff, 30)
    np.testing.assert_array_equal(got.toarray(), dense)
    np.testing.assert_array_equal(data.ever_purchased(events, users, cutoff), dense.any(axis=1))
    scores = baselines.popularity_scores(events, users, cutoff, 30)
    masked = baselines.exclude_purchased(scores, events, users, cutoff)
    np.testing.assert_array_equal(masked, np.where(dense, -np.inf, scores))


def test_ranking_metrics_agree_for_sparse_and_dense_relevance(small) -> None:
    events, users, cutoffs = small
    targets, _ = data.window_targets(events, users, cutoffs, 7, 30, 7)
    scores = np.random.default_rng(2).normal(size=targets.shape)
    assert ranking_metrics(scores, targets, 10) == ranking_metrics(scores, targets.toarray(), 10)


def test_memory_at_100k_users_by_5000_items_stays_far_below_dense() -> None:
    """Dense float32 history and targets at this shape would take 6 GB; sparse stays small."""
    events = synthetic_events(n_users=100_000, n_items=5000, per_user=8)
    users = np.arange(1, 100_001, dtype=np.int64)
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    tracemalloc.start()
    try:
        history = data.user_item_history(events, users, cutoff, 5000)
        targets, _ = data.window_targets(events, users, cutoff, 7, 5000, 7)
        bought = data.purchased_before(events, users, cutoff, 5000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert history.nnz > 100_000 and targets.nnz > 10_000 and bought.nnz > 10_000
    assert peak < 400 * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("name", ["popularity", "repurchase", "cooccurrence"])
def test_ranking_a_batch_of_users_at_a_time_equals_ranking_all(small, name) -> None:
    events, users, _ = small
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    full = baselines.exclude_purchased(
        baselines.ranking_baseline(name, events, users, cutoff, 30), events, users, cutoff
    )
    scorer = baselines.ranking_scorer(name, events, cutoff, 30)
    parts = []
    for m in batches(len(users), size=17):
        scores = baselines.exclude_purchased(scorer(users[m]), events, users[m], cutoff)
        parts.append(Ranked.from_scores(scores, 12))
    got = Ranked.concat(parts, 12)
    want = Ranked.from_scores(full, 12)
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_array_equal(got.scores, want.scores)
    relevant, _ = data.window_targets(events, users, cutoff, 7, 30, 7)
    assert ranked_metrics(got.items, relevant) == ranking_metrics(full, relevant.toarray())


def test_cooccurrence_counts_pairs_seen_not_items_by_items() -> None:
    """The item-follows-item matrix holds the pairs seen: 50,000 items would take 20 GB dense."""
    events = synthetic_events(n_users=3000, n_items=400, per_user=12)
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    follows = baselines.cooccurrence_follows(events, cutoff, 400)
    end = events.to_seconds(cutoff)
    recent = (events.seconds < end) & (events.seconds >= end - 90 * 86_400) & (events.item > 0)
    u, it = events.user[recent], events.item[recent] - 1
    same = (u[1:] == u[:-1]) & (it[1:] != it[:-1])
    dense = np.zeros((400, 400))
    np.add.at(dense, (it[:-1][same], it[1:][same]), 1.0)
    dense /= np.maximum(dense.sum(axis=1, keepdims=True), 1.0)
    np.testing.assert_array_equal(follows.toarray(), dense)
    assert follows.nnz < 0.2 * 400 * 400

    wide = synthetic_events(n_users=20_000, n_items=50_000, per_user=8)
    tracemalloc.start()
    try:
        follows = baselines.cooccurrence_follows(wide, cutoff, 50_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert follows.shape == (50_000, 50_000)
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB"
