"""Item rankings kept as each user's best columns, scored a batch of users at a time.

A recommender scores every item for every user, but write-back needs the top `top_k` and the
ranking metrics the top 12. Scoring `BATCH_USERS` users at a time and keeping only their best
`depth` columns bounds memory by batch x items instead of users x items, with the same order
as `metrics.top_k` of the full matrix (ties by item index).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ml_jobs.users.metrics import top_k

BATCH_USERS = 2048  # a multiple of the torch scoring batch (1024): identical inner batches


@dataclass(frozen=True)
class Ranked:
    """Per row the `depth` best item columns (dense index - 1), best first, and their scores."""

    items: np.ndarray  # (n, depth) int64
    scores: np.ndarray  # (n, depth) float64

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, mask: np.ndarray) -> Ranked:
        return Ranked(self.items[mask], self.scores[mask])

    @classmethod
    def from_scores(cls, scores: np.ndarray, depth: int) -> Ranked:
        best = top_k(scores, depth)
        return cls(best.astype(np.int64), np.take_along_axis(scores, best, axis=1).astype(float))

    @classmethod
    def concat(cls, parts: list[Ranked], depth: int) -> Ranked:
        if not parts:
            return cls(np.zeros((0, depth), dtype=np.int64), np.zeros((0, depth)))
        return cls(
            np.concatenate([p.items for p in parts]), np.concatenate([p.scores for p in parts])
        )


def batches(n: int, size: int = BATCH_USERS) -> Iterator[np.ndarray]:
    """Boolean row masks of consecutive batches of at most `size` rows (one, empty, for none),
    made one at a time: holding them all would cost n x n / size bytes."""
    if n == 0:
        yield np.zeros(0, dtype=bool)
    for start in range(0, n, size):
        mask = np.zeros(n, dtype=bool)
        mask[start : start + size] = True
        yield mask


def rank_in_batches(
    score: Callable[[np.ndarray], np.ndarray], n: int, depth: int, size: int = BATCH_USERS
) -> Ranked:
    """`score(mask)` gives the dense (mask.sum(), items) scores of the masked rows."""
    return Ranked.concat([Ranked.from_scores(score(m), depth) for m in batches(n, size)], depth)
