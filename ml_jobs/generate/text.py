"""Free text of the shop: search queries as shoppers type them, and reviews that follow ratings."""

from __future__ import annotations

import numpy as np

from ml_jobs.generate.vocab import (
    REVIEW_NEGATIVE_OPENERS,
    REVIEW_NEGATIVE_VERDICTS,
    REVIEW_NEUTRAL_OPENERS,
    REVIEW_NEUTRAL_VERDICTS,
    REVIEW_POSITIVE_OPENERS,
    REVIEW_POSITIVE_VERDICTS,
)

TITLE_CASE_SHARE = 0.15  # "Home Decor"
UPPER_CASE_SHARE = 0.05  # "HOME DECOR"
SLOPPY_SPACE_SHARE = 0.10  # " home  decor "


def noisy_queries(rng: np.random.Generator, terms: np.ndarray) -> np.ndarray:
    """Queries as typed: mostly lower case, some Title or UPPER case, some stray whitespace.

    Downstream matching should compare ``lower(trim(query))`` with runs of spaces collapsed.
    """
    out = terms.astype(object).copy()
    case = rng.random(out.size)
    space = rng.random(out.size)
    style = rng.integers(0, 3, size=out.size)
    for i in np.nonzero(case < TITLE_CASE_SHARE + UPPER_CASE_SHARE)[0]:
        out[i] = out[i].title() if case[i] < TITLE_CASE_SHARE else out[i].upper()
    for i in np.nonzero(space < SLOPPY_SPACE_SHARE)[0]:
        if style[i] == 0:
            out[i] = f" {out[i]}"
        elif style[i] == 1:
            out[i] = f"{out[i]}  "
        else:
            out[i] = out[i].replace(" ", "  ") if " " in out[i] else f"{out[i]} "
    return out


_BUCKETS = (
    (REVIEW_NEGATIVE_OPENERS, REVIEW_NEGATIVE_VERDICTS),  # ratings 1–2
    (REVIEW_NEUTRAL_OPENERS, REVIEW_NEUTRAL_VERDICTS),  # rating 3
    (REVIEW_POSITIVE_OPENERS, REVIEW_POSITIVE_VERDICTS),  # ratings 4–5
)


def review_texts(rng: np.random.Generator, rating: np.ndarray, noun: np.ndarray) -> np.ndarray:
    """One review per rating: an opener naming the item and a verdict, both of its sentiment."""
    bucket = np.where(rating <= 2, 0, np.where(rating == 3, 1, 2))
    opener_pick = rng.random(rating.size)
    verdict_pick = rng.random(rating.size)
    out = np.empty(rating.size, dtype=object)
    for i in range(rating.size):
        openers, verdicts = _BUCKETS[bucket[i]]
        opener = openers[int(opener_pick[i] * len(openers))]
        verdict = verdicts[int(verdict_pick[i] * len(verdicts))]
        out[i] = f"{opener.format(noun=noun[i])} {verdict}"
    return out
