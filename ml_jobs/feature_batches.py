"""Batches of entity rows for point-in-time retrieval, so its memory stays bounded.

Feast joins every entity row with the snapshots of its entity before the row's timestamp: the
join grows with rows x snapshots. `ml_jobs.features.historical_features` asks for one batch of
rows at a time, and a batch holds whole timestamps (cutoffs), so it spans a short stretch of
time and sees only that stretch's snapshots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def entity_batches(stamps: pd.Series, batch_rows: int | None) -> list[np.ndarray]:
    """Row positions of each retrieval batch: rows grouped by timestamp, in time order.

    A batch takes whole timestamps while it stays within ``batch_rows`` rows (a timestamp with
    more rows than that is split into batches of ``batch_rows``), so a batch of cutoffs spans a
    short stretch of time and the point-in-time join sees only that stretch's snapshots.
    ``None`` returns one batch of every row.
    """
    if batch_rows is None or len(stamps) <= batch_rows:
        return [np.arange(len(stamps))]
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    order = np.argsort(stamps.to_numpy(), kind="stable")
    _, starts = np.unique(stamps.to_numpy()[order], return_index=True)
    groups = np.split(order, starts[1:])
    batches: list[np.ndarray] = []
    current: list[np.ndarray] = []
    size = 0
    for group in groups:
        if size + len(group) > batch_rows and current:
            batches.append(np.concatenate(current))
            current, size = [], 0
        for start in range(0, len(group), batch_rows):
            part = group[start : start + batch_rows]
            if size + len(part) > batch_rows:
                batches.append(np.concatenate(current))
                current, size = [], 0
            current.append(part)
            size += len(part)
    if current:
        batches.append(np.concatenate(current))
    return batches
