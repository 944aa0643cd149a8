"""The user models' inputs are assembled in bounded pieces: Feast point-in-time features a batch
of rows at a time, per-row arrays a chunk at a time, and at most `max_labelled_rows` labelled
rows. Each piece must give exactly what one pass over everything gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from rich.console import Console

from ml_jobs import pipeline
from ml_jobs.feature_batches import entity_batches
from ml_jobs.users import data
from ml_jobs.users.backtest import UserModelsConfig
from ml_jobs.users.examples import Examples, build_examples
from ml_jobs.users.inputs import load_inputs, sample_users

QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def shop(module_home):
    """A 300-user, 40-item, 70-day shop through dbt and Feast."""
    pipeline.generate(module_home, users=300, items=40, days=70)
    pipeline.build_warehouse(module_home)
    pipeline.publish_features(module_home)
    return module_home


@pytest.fixture(scope="module")
def rows(shop) -> pd.DataFrame:
    """Every labelled row, then every user as of the day after the data ends."""
    labels = data.load_labels(shop)
    catalog = data.load_catalog(shop)
    events = data.load_events(shop, catalog)
    scoring_ts = pd.Timestamp(events.last_day + pd.Timedelta(days=1)).tz_localize("UTC")
    scoring = pd.DataFrame({"user_id": np.unique(events.user), "cutoff_ts": scoring_ts})
    return pd.concat([labels[["user_id", "cutoff_ts"]], scoring], ignore_index=True)


def test_entity_batches_hold_whole_timestamps_within_the_bound() -> None:
    day = pd.Timestamp("2026-03-02", tz="UTC")
    stamps = pd.Series([day + pd.Timedelta(days=d) for d in [2, 0, 1, 0, 2, 2, 2, 1, 0, 3]])
    batches = entity_batches(stamps, 3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(stamps)))
    assert all(len(b) <= 3 for b in batches)
    # Time order; a batch mixes days only when both fit whole; day 2 (4 rows) is split.
    days = [sorted({(stamps[i] - day).days for i in b}) for b in batches]
    assert days == [[0], [1], [2], [2, 3]] or days == [[0], [1], [2], [2], [3]]
    assert [len(b) for b in entity_batches(stamps, None)] == [len(stamps)]
    assert [len(b) for b in entity_batches(stamps, 100)] == [len(stamps)]
    with pytest.raises(ValueError, match="batch_rows"):
        entity_batches(stamps, 0)


def test_features_fetched_in_batches_equal_one_retrieval(shop, rows) -> None:
    users, stamps = rows["user_id"].to_numpy(), rows["cutoff_ts"]
    whole = data.user_features(shop, users, stamps)
    per_cutoff = int(stamps.value_counts().max())
    calls: list[tuple[int, int]] = []
    batched = data.user_features(
        shop, users, stamps, batch_rows=per_cutoff, on_batch=lambda *a: calls.append(a)
    )
    # One Feast retrieval per batch, never more rows than the bound, every cutoff covered.
    expected = entity_batches(pd.to_datetime(stamps.reset_index(drop=True)), per_cutoff)
    assert len(calls) == len(expected) >= stamps.nunique() // 2 > 1
    assert [done for done, _ in calls] == np.cumsum([len(b) for b in expected]).tolist()
    assert all(total == len(rows) for _, total in calls)
    pd.testing.assert_frame_equal(batched, whole)
    assert whole.iloc[:, 2:].notna().any(axis=None)


def _assert_examples_equal(a: Examples, b: Examples) -> None:
    for field in dataclasses.fields(Examples):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        elif isinstance(x, pd.Series):
            pd.testing.assert_series_equal(x, y)
        elif sp.issparse(x):
            assert x.shape == y.shape and (x != y).nnz == 0, field.name
        elif dataclasses.is_dataclass(x):
            for part in dataclasses.fields(x):
                np.testing.assert_array_equal(getattr(x, part.name), getattr(y, part.name))
        elif x is None:
            assert y is None, field.name
        else:
            np.testing.assert_array_equal(x, y, err_msg=field.name)


def test_examples_built_in_chunks_equal_one_pass(shop) -> None:
    catalog = data.load_catalog(shop)
    events = data.load_events(shop, catalog)
    labels = data.load_labels(shop)
    features = data.user_features(shop, labels["user_id"].to_numpy(), labels["cutoff_ts"])

    def build(**options) -> Examples:
        return build_examples(labels, features, events, catalog, 20, 7, True, **options)

    whole = build(chunk_rows=len(labels))
    _assert_examples_equal(build(chunk_rows=97), whole)
    # Without the sequence model's inputs: the same features and targets, nothing else.
    lean = build(chunk_rows=97, torch_inputs=False)
    for name in ("seq", "item_signals", "user_items", "activity", "category_share"):
        assert getattr(lean, name) is None
    for name in ("purchased", "spend", "category_counts", "cutoff_index", "user_id"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(whole, name))
    assert (lean.item_counts != whole.item_counts).nnz == 0
    assert len(lean.subset(lean.cutoff_index == 0)) == int((whole.cutoff_index == 0).sum())


def test_sampling_keeps_whole_users_on_every_cutoff() -> None:
    rng = np.random.default_rng(0)
    cutoffs = np.repeat(pd.date_range("2026-01-05", periods=8, freq="7D", tz="UTC"), 5000)
    frame = pd.DataFrame({"user_id": rng.integers(1, 20_000, len(cutoffs)), "cutoff_ts": cutoffs})
    assert sample_users(frame, len(frame)) is frame
    kept = sample_users(frame, len(frame) // 4)
    assert abs(len(kept) - len(frame) / 4) < 0.05 * len(frame)
    chosen = set(kept["user_id"])
    # A user is kept on all of their cutoffs or none.
    assert kept.equals(frame[frame["user_id"].isin(chosen)].reset_index(drop=True))
    with pytest.raises(ValueError, match="max_labelled_rows"):
        sample_users(frame, 0)


def test_fast_inputs_are_capped_and_lean(shop) -> None:
    config = UserModelsConfig(n_cutoffs=1, train_cutoffs=3, use_torch=False)
    full = load_inputs(shop, config, QUIET)
    capped = load_inputs(shop, dataclasses.replace(config, max_labelled_rows=100), QUIET)
    assert full.train_all.seq is None and full.predict_ex.user_items is None
    assert len(capped.train_all) < len(full.train_all)
    # The kept rows carry the same features and targets as in the full load.
    key = ["user_id", "cutoff_ts"]
    left = pd.DataFrame({"user_id": full.train_all.user_id, "cutoff_ts": full.train_all.cutoff_ts})
    right = pd.DataFrame(
        {"user_id": capped.train_all.user_id, "cutoff_ts": capped.train_all.cutoff_ts}
    )
    at = left.reset_index().merge(right, on=key)["index"].to_numpy()
    assert len(at) == len(capped.train_all)
    pd.testing.assert_frame_equal(
        full.train_all.features.iloc[at].reset_index(drop=True), capped.train_all.features
    )
    np.testing.assert_array_equal(full.train_all.purchased[at], capped.train_all.purchased)
    assert len(capped.predict_ex) == len(full.predict_ex)  # every active user is still scored
