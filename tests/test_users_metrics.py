"""User model metrics and small pure pieces, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_jobs.users.calibration import held_out_cutoffs
from ml_jobs.users.job import propensity_frame, ranked_frame
from ml_jobs.users.metrics import (
    category_metrics,
    expected_calibration_error,
    log_loss,
    pr_auc,
    ranking_metrics,
    roc_auc,
    top_decile_lift,
    top_k,
)
from ml_jobs.users.train import Platt


def test_roc_auc_counts_ordered_pairs_with_ties_as_half() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])))


def test_pr_auc_is_average_precision() -> None:
    # ranks: pos (1/1), neg, pos (2/3) -> (1 + 2/3) / 2
    y = np.array([1, 0, 1])
    assert pr_auc(y, np.array([0.9, 0.8, 0.7])) == pytest.approx((1 + 2 / 3) / 2)


def test_log_loss_and_ece_of_a_perfectly_calibrated_constant() -> None:
    y = np.array([1, 0, 0, 0] * 25)
    p = np.full(100, 0.25)
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    assert log_loss(y, p) == pytest.approx(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    # Saying 0.75 instead of 0.25 for every row is 0.5 off in the one occupied bin.
    assert expected_calibration_error(y, np.full(100, 0.75)) == pytest.approx(0.5)


def test_top_decile_lift() -> None:
    y = np.zeros(100)
    y[:10] = 1  # the 10 highest scores are all the positives
    p = np.linspace(1, 0, 100)
    assert top_decile_lift(y, p) == pytest.approx(10.0)


def test_ranking_metrics_full_ranking() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]])
    relevant = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    got = ranking_metrics(scores, relevant, k=2)
    # Row 1: hit at rank 2; row 2: the relevant item is ranked last; row 3 has nothing to find.
    assert got["users"] == 2
    assert got["hr_at_2"] == pytest.approx(0.5)
    assert got["ndcg_at_2"] == pytest.approx((1 / np.log2(3)) / 2)
    assert got["map_at_12"] == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_ranking_metrics_on_a_catalogue_smaller_than_k() -> None:
    # Four items and k = 10: every item is ranked, so every user with a relevant item is hit.
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    relevant = np.array([[0, 0, 1, 0], [1, 0, 0, 1]])
    got = ranking_metrics(scores, relevant, k=10)
    assert got["hr_at_10"] == pytest.approx(1.0)
    # Row 1: its one item at rank 3; row 2: its items at ranks 1 and 4 of an ideal 1 and 2.
    row2 = (1 + 1 / np.log2(5)) / (1 + 1 / np.log2(3))
    assert got["ndcg_at_10"] == pytest.approx((1 / np.log2(4) + row2) / 2)
    assert got["map_at_12"] == pytest.approx((1 / 3 + (1 + 2 / 4) / 2) / 2)


def test_top_k_breaks_ties_by_index() -> None:
    assert top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 3).tolist() == [[1, 2, 3]]


def test_category_metrics() -> None:
    probs = np.array([[0.5, 0.5], [0.9, 0.1]])
    counts = np.array([[1.0, 1.0], [0.0, 0.0]])
    got = category_metrics(probs, counts)
    assert got["users"] == 1
    assert got["category_nll"] == pytest.approx(np.log(2))


def test_platt_recovers_a_shifted_logit() -> None:
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 2, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * logit - 1.0)))).astype(float)
    platt = Platt().fit(logit, y)
    assert platt.a == pytest.approx(0.5, abs=0.05)
    assert platt.b == pytest.approx(-1.0, abs=0.05)
    assert expected_calibration_error(y, platt(logit)) < 0.02


def test_held_out_cutoffs_marks_the_newest_k_cutoffs() -> None:
    days = ["2026-03-01", "2026-03-15", "2026-03-08", "2026-03-15", "2026-03-01", "2026-03-08"]
    stamps = pd.Series(pd.to_datetime(days, utc=True))
    assert held_out_cutoffs(stamps, 1).tolist() == [False, True, False, True, False, False]
    assert held_out_cutoffs(stamps, 2).tolist() == [False, True, True, True, False, True]
    # Holding out every cutoff would leave nothing to fit on, and 0 means no calibrator:
    # nothing is held out.
    assert not held_out_cutoffs(stamps, 3).any()
    assert not held_out_cutoffs(stamps, 0).any()
    with pytest.raises(ValueError, match="calibration cutoffs must be >= 0"):
        held_out_cutoffs(stamps, -1)


def test_platt_on_pooled_cutoffs_fits_both_slices_exactly() -> None:
    # Two held-out cutoffs pooled: the older one's rows all have logit -1 and a 20 % purchase
    # rate, the newer one's logit +1 and 60 %. Two parameters fit two points exactly:
    # -a + b = logit(0.2) and a + b = logit(0.6), so a = (logit(.6) - logit(.2)) / 2 and
    # b = (logit(.6) + logit(.2)) / 2; the newest cutoff alone (one logit) could not fix a.
    def lg(p: float) -> float:
        return float(np.log(p / (1 - p)))

    z = np.r_[np.full(10, -1.0), np.full(10, 1.0)]
    y = np.r_[np.ones(2), np.zeros(8), np.ones(6), np.zeros(4)]
    platt = Platt().fit(z, y)
    assert platt.a == pytest.approx((lg(0.6) - lg(0.2)) / 2, abs=1e-4)
    assert platt.b == pytest.approx((lg(0.6) + lg(0.2)) / 2, abs=1e-4)
    assert platt(np.array([-1.0, 1.0])) == pytest.approx([0.2, 0.6], abs=1e-5)


def test_propensity_deciles_and_ranked_frames() -> None:
    p = np.linspace(0.0, 1.0, 20)
    frame = propensity_frame(np.arange(1, 21), p, np.zeros(20), 7)
    assert frame.loc[frame["p_purchase"].idxmax(), "decile"] == 1
    assert frame.loc[frame["p_purchase"].idxmin(), "decile"] == 10
    assert frame["decile"].value_counts().tolist() == [2] * 10
    scores = np.array([[0.1, 0.7, 0.2], [0.3, -np.inf, 0.6]])
    ranked = ranked_frame(np.array([5, 6]), scores, np.array([10, 20, 30]), 3, "item_id")
    # The excluded item (-inf) is not written.
    assert ranked[ranked["user_id"] == 5]["item_id"].tolist() == [20, 30, 10]
    assert ranked[ranked["user_id"] == 6]["item_id"].tolist() == [30, 10]
    assert ranked["rank"].tolist() == [1, 2, 3, 1, 2]
