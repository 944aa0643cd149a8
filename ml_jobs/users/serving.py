"""Online purchase-propensity scoring for the serving app.

    scorer = load_propensity_scorer(paths)
    features = ml_jobs.features.online_features(paths, "user", ids, service=scorer.feature_service)
    scorer.score(features)  # -> user_id, p_purchase, expected_spend

The scorer uses Feast online features only. When the champion of
`predictions.user_purchase_propensity` is the XGBoost model, that run is served. When the
champion is the torch sequence model, which also needs the user's recent event sequence (not
in the online store), the scorer serves the newest succeeded XGBoost propensity run instead and
says so in `fallback_reason`: a request path that reads the event log would tie serving latency
to the warehouse, and the batch table already carries the torch model's scores for every user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.registry import current_champion
from ml_jobs.users.backtest import PROPENSITY
from ml_jobs.users.baselines import XGBoostPropensity
from ml_jobs.users.data import FEATURE_SERVICE
from ml_jobs.warehouse import connect

SERVABLE_MODEL = "xgboost_propensity"


class NoPropensityModelError(RuntimeError):
    """No succeeded propensity run can be served; the message says which step to run."""


@dataclass
class PropensityScorer:
    """Scores P(purchase within `window_days`) and expected spend from online features."""

    model: XGBoostPropensity
    run_id: str
    model_name: str
    feature_service: str = FEATURE_SERVICE
    window_days: int = 7
    fallback_reason: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self.model.feature_names)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """`features`: user_id plus the service's features (NaN for unknown). One row each."""
        if "user_id" not in features.columns:
            raise ValueError("features need a user_id column (from online_features)")
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(
                f"features lack {missing}: fetch them with service={self.feature_service!r}"
            )
        if features.empty:
            return pd.DataFrame(
                {"user_id": pd.Series(dtype="int64"), "p_purchase": [], "expected_spend": []}
            )
        numeric = features[self.feature_names].astype("float64")
        p, spend = self.model.predict(numeric)
        return pd.DataFrame(
            {
                "user_id": features["user_id"].to_numpy(np.int64),
                "p_purchase": p.astype(np.float64),
                "expected_spend": spend.astype(np.float64),
            }
        )


def _newest_run(paths: Paths, model_name: str) -> tuple[str, str] | None:
    with connect(paths.warehouse, read_only=True) as con:
        found = con.execute(
            """SELECT run_id, artifact_uri FROM ml.model_runs
            WHERE model_name = ? AND status = 'succeeded'
            ORDER BY trained_at DESC, run_id DESC LIMIT 1""",
            [model_name],
        ).fetchone()
    return (str(found[0]), str(found[1])) if found else None


def load_propensity_scorer(paths: Paths) -> PropensityScorer:
    """The champion propensity model (or the XGBoost fallback, see module doc) for serving."""
    if not paths.warehouse.exists():
        raise NoPropensityModelError(f"no warehouse at {paths.warehouse}: run the pipeline first")
    try:
        with connect(paths.warehouse, read_only=True) as con:
            champion = current_champion(con, PROPENSITY)
    except Exception as exc:  # tables missing: the user models have never run
        raise NoPropensityModelError(
            f"no propensity runs in {paths.warehouse}: run `basketcast users` first ({exc})"
        ) from exc
    reason = None
    if champion is not None and champion["model_name"] != SERVABLE_MODEL:
        reason = (
            f"champion {champion['model_name']} ({champion['run_id']}) needs event sequences; "
            f"serving the newest {SERVABLE_MODEL} run on online features"
        )
    found = _newest_run(paths, SERVABLE_MODEL)
    if champion is not None and champion["model_name"] == SERVABLE_MODEL:
        with connect(paths.warehouse, read_only=True) as con:
            uri = con.execute(
                "SELECT artifact_uri FROM ml.model_runs WHERE run_id = ?", [champion["run_id"]]
            ).fetchone()
        found = (champion["run_id"], str(uri[0])) if uri else found
    if found is None:
        raise NoPropensityModelError(
            f"no succeeded {SERVABLE_MODEL} run in ml.model_runs: run `basketcast users` first"
        )
    run_id, uri = found
    model = XGBoostPropensity.load(Path(uri))
    return PropensityScorer(model, run_id, SERVABLE_MODEL, fallback_reason=reason)
