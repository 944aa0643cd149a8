"""Propensity and ranking metrics, in numpy, with the definitions spelled out.

Propensity: ROC-AUC (rank statistic, ties averaged), PR-AUC (average precision), log loss,
expected calibration error over equal-width probability bins, and top-decile lift (positive
rate among the 10 % highest scores over the base rate).

Ranking uses the full ranking over every item (no sampled negatives): HR@K (any relevant item
in the top K), NDCG@K (binary relevance), MAP@K (average precision truncated at K, divided by
min(K, relevant)). Rows without relevant items are left out of ranking metrics.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

EPS = 1e-7


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: mean precision at the rank of every positive."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-np.asarray(p), kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width bins of (share of rows) x |mean prediction - positive rate|."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.mean() == 0:
        return float("nan")
    k = max(1, int(np.ceil(len(y) / 10)))
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def propensity_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(np.mean(y)) if len(y) else float("nan"),
        "rows": float(len(y)),
    }


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(n, k) column indices of the k highest scores per row, best first (ties by index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(scores: np.ndarray, relevant, k: int = 10) -> dict[str, float]:
    """HR@k, NDCG@k and MAP@12 of full rankings; `relevant` is (n, items) bool or counts,
    dense or scipy.sparse."""
    return ranked_metrics(top_k(scores, max(k, 12)), relevant, k)


def ranked_metrics(ranked: np.ndarray, relevant, k: int = 10) -> dict[str, float]:
    """The metrics of `ranking_metrics` from each row's best columns, best first (n, >= 12),
    as `top_k` of the full scores gives them: full ranking without keeping (n, items) scores."""
    if sp.issparse(relevant):
        rel = sp.csr_matrix(relevant > 0)
        rel.eliminate_zeros()
        per_row = np.asarray(rel.getnnz(axis=1))
    else:
        rel = np.asarray(relevant) > 0
        per_row = rel.sum(axis=1)
    keep = per_row > 0
    if not keep.any():
        return {f"hr_at_{k}": float("nan"), f"ndcg_at_{k}": float("nan"), "map_at_12": float("nan")}
    ranked, n_rel = ranked[keep][:, : max(k, 12)], per_row[keep]
    rows = np.repeat(np.nonzero(keep)[0], ranked.shape[1])
    hits = np.asarray(rel[rows, ranked.ravel()]).reshape(ranked.shape).astype(bool)
    hr = hits[:, :k].any(axis=1).mean()
    # A catalogue smaller than k ranks fewer than k columns: those are all the positions.
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount[: min(k, hits.shape[1])]).sum(axis=1)
    ideal = np.array([discount[: min(int(n), k)].sum() for n in n_rel])
    ndcg = (dcg / ideal).mean()
    h12 = hits[:, :12]
    precision = np.cumsum(h12, axis=1) / np.arange(1, h12.shape[1] + 1)
    ap = (precision * h12).sum(axis=1) / np.minimum(n_rel, 12)
    return {
        f"hr_at_{k}": float(hr),
        f"ndcg_at_{k}": float(ndcg),
        "map_at_12": float(ap.mean()),
        "users": float(keep.sum()),
    }


def category_metrics(probs: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Cross-entropy of predicted category distributions against the observed ones, and how
    often the top-1 category is the user's most frequent next category."""
    total = counts.sum(axis=1)
    keep = total > 0
    if not keep.any():
        return {"category_nll": float("nan"), "category_top1": float("nan")}
    target = counts[keep] / total[keep, None]
    p = np.clip(probs[keep], EPS, 1.0)
    nll = -(target * np.log(p)).sum(axis=1).mean()
    top1 = (probs[keep].argmax(axis=1) == counts[keep].argmax(axis=1)).mean()
    return {"category_nll": float(nll), "category_top1": float(top1), "users": float(keep.sum())}
