"""Probability calibration fitted on held-out cutoffs that precede the evaluated ones.

With `k` calibration cutoffs (UserModelsConfig.calibration_cutoffs) both propensity models
train on all but the newest `k` of their training cutoffs (`held_out_cutoffs`) and fit this
scaler on the pooled predictions of those: p = sigmoid(a * margin + b). Its two parameters
cannot reorder users (the ROC-AUC is unchanged); they pull the predicted purchase rate to the
observed one on rows the model did not train on. With `k = 0` nothing is held out and the
models' own probabilities are used: the week-to-week swing of the shop's purchase rate is
larger than what a scaler fitted on the weeks just before corrects (bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit


@dataclass
class Platt:
    """p = sigmoid(a * logit + b), fitted by Newton's method on held-out rows."""

    a: float = 1.0
    b: float = 0.0

    def fit(self, logit: np.ndarray, y: np.ndarray, steps: int = 50) -> Platt:
        x = np.stack([logit, np.ones_like(logit)], axis=1).astype(np.float64)
        w = np.array([1.0, 0.0])
        for _ in range(steps):
            p = expit(x @ w)
            grad = x.T @ (p - y) + 1e-6 * w
            hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-9:
                break
        self.a, self.b = float(w[0]), float(w[1])
        return self

    def __call__(self, logit: np.ndarray) -> np.ndarray:
        return expit(self.a * logit + self.b)


def held_out_cutoffs(cutoff_ts: pd.Series, k: int) -> np.ndarray:
    """Row mask of the newest `k` distinct cutoffs of `cutoff_ts`: the rows a model holds out
    of fitting to calibrate on. Nothing is held out when `k` is 0 or when holding out would
    leave nothing to fit."""
    if k < 0:
        raise ValueError(f"calibration cutoffs must be >= 0 (0: no calibrator), got {k}")
    if k == 0:
        return np.zeros(len(cutoff_ts), dtype=bool)
    stamps = pd.to_datetime(pd.Series(cutoff_ts), utc=True).reset_index(drop=True)
    newest = np.sort(stamps.unique())[-k:]
    held = stamps.isin(newest).to_numpy()
    return held if (~held).any() else np.zeros(len(held), dtype=bool)
