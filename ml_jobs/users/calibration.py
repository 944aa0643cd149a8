"""Probability calibration fitted on a held-out cutoff that precedes the evaluated ones.

Both propensity models train on all but the newest of their training cutoffs and fit this
scaler on the newest: p = sigmoid(a * margin + b). Its two parameters cannot reorder users (the
ROC-AUC is unchanged); they pull the predicted purchase rate to the observed one on rows the
model did not train on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
