"""Daily batch scoring of the user champions: no training, just the saved models.

The weekly training job decides which run is champion of each user product
(`user_purchase_propensity`, `user_category_affinity`, `user_item_recommendations`). Every day
this module loads those runs (XGBoost or torch from their artifact folders; the count
baselines need none), scores every user active in the 90 days before the day after `as_of`,
and writes each product's table under the champion's run_id and that as-of date, each table in
one transaction. Rerunning a date replaces that date's rows; the scores go through the same
`score_models` as the training job's write-back, so the same inputs give the same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.registry import current_champion
from ml_jobs.sources import input_target
from ml_jobs.users import data
from ml_jobs.users.backtest import (
    AFFINITY,
    MODELS,
    PROPENSITY,
    RECOMMENDATIONS,
    Fitted,
    UserModelsConfig,
    score_models,
)
from ml_jobs.users.baselines import XGBoostPropensity
from ml_jobs.users.examples import Examples, build_examples
from ml_jobs.users.inputs import ACTIVE_DAYS
from ml_jobs.users.job import prediction_frame
from ml_jobs.users.train import TrainedSequenceModel
from ml_jobs.warehouse import connect, write_predictions

USER_PRODUCTS = (PROPENSITY, AFFINITY, RECOMMENDATIONS)


@dataclass(frozen=True)
class UserChampionPrediction:
    product: str
    run_id: str
    model_name: str
    as_of_date: dt.date
    rows: int
    skipped: str | None = None  # why nothing was written (the previous rows stay)


@dataclass(frozen=True)
class ChampionRun:
    product: str
    run_id: str
    model_name: str
    model_version: str
    artifact_dir: Path
    config: UserModelsConfig


def config_from_params(params: dict[str, Any] | None) -> UserModelsConfig:
    """The scoring settings a run was trained with (ml.model_runs.params); defaults otherwise."""
    params = params or {}
    scalar = {
        f.name: params[f.name]
        for f in dataclasses.fields(UserModelsConfig)
        if f.name in params and not isinstance(params[f.name], dict)
    }
    return UserModelsConfig(**scalar)


def champion_runs(paths: Paths) -> dict[str, ChampionRun] | None:
    """Each user product's champion run, or None when any product has none yet."""
    found: dict[str, ChampionRun] = {}
    if not paths.warehouse.exists():  # no registry yet (the inputs may live on Spark)
        return None
    with connect(paths.warehouse, read_only=True) as con:
        for product in USER_PRODUCTS:
            champion = current_champion(con, product)
            if champion is None:
                return None
            version, uri, params = con.execute(
                "SELECT model_version, artifact_uri, params FROM ml.model_runs WHERE run_id = ?",
                [champion["run_id"]],
            ).fetchone()
            name = champion["model_name"]
            if name not in MODELS:
                raise ValueError(
                    f"champion {champion['run_id']} of {product} is {name!r}, not a user model"
                )
            found[product] = ChampionRun(
                product=product,
                run_id=champion["run_id"],
                model_name=name,
                model_version=str(version),
                artifact_dir=Path(uri),
                config=config_from_params(json.loads(params) if params else None),
            )
    return found


def _reads_features(run: ChampionRun) -> bool:
    return run.model_name == "xgboost_propensity" or run.model_name.startswith("torch_sequence")


def _load(run: ChampionRun) -> Fitted:
    """The saved model a run needs; count baselines need none."""
    if run.model_name == "xgboost_propensity":
        return Fitted(xgb=XGBoostPropensity.load(run.artifact_dir), seq=None)
    if run.model_name.startswith("torch_sequence"):
        return Fitted(xgb=None, seq=TrainedSequenceModel.load(run.artifact_dir))
    return Fitted(xgb=None, seq=None)


def predict_user_champions(
    paths: Paths, as_of: dt.date | None = None, target: str | None = None
) -> list[UserChampionPrediction] | None:
    """Score every user product's champion as of `as_of` (default: the last day of events),
    on the events and features of the warehouse `target` built (ml_jobs.sources).

    Returns None when a product has no champion yet: the caller trains the user models first.
    """
    runs = champion_runs(paths)
    if runs is None:
        return None
    catalog = data.load_catalog(paths, target)
    events = data.load_events(paths, catalog, target=target)
    as_of = min(as_of or events.last_day, events.last_day)
    cutoff = pd.Timestamp(as_of + dt.timedelta(days=1)).tz_localize("UTC")
    users = data.scoring_population(events, cutoff, ACTIVE_DAYS)
    if len(users) == 0:
        raise data.MissingTrainingDataError(
            f"no user has an event in the {ACTIVE_DAYS} days before {cutoff:%Y-%m-%d}: "
            "nothing to score (is the event log loaded?)"
        )
    rows = pd.DataFrame({"user_id": users, "cutoff_ts": cutoff})
    if any(_reads_features(run) for run in runs.values()):
        features = data.user_features(paths, users, rows["cutoff_ts"], offline=input_target(target))
    else:
        features = pd.DataFrame(index=range(len(users)))
    examples: dict[tuple[int, int], Examples] = {}
    results: list[UserChampionPrediction] = []
    for product, run in runs.items():
        config = run.config
        key = (config.max_len, config.window_days)
        if key not in examples:
            examples[key] = build_examples(
                rows, features, events, catalog, config.max_len, config.window_days, False
            )
        try:
            fitted = _load(run)
        except (OSError, KeyError, RuntimeError, TypeError) as exc:
            # An artifact this code cannot read (deleted, or saved by an older model version):
            # keep the product's newest rows; the weekly training run brings a new champion.
            reason = f"cannot load {run.artifact_dir}: {type(exc).__name__}: {exc}"
            results.append(
                UserChampionPrediction(product, run.run_id, run.model_name, as_of, 0, reason)
            )
            continue
        out = score_models(fitted, examples[key], events, catalog, cutoff, config, {run.model_name})
        frame = prediction_frame(run.model_name, out, users, catalog, config).assign(
            run_id=run.run_id,
            model_name=run.model_name,
            model_version=run.model_version,
            as_of_date=pd.Timestamp(as_of),
            predicted_at=pd.Timestamp.now(tz="UTC"),
        )
        written = write_predictions(paths.warehouse, product, frame)
        results.append(UserChampionPrediction(product, run.run_id, run.model_name, as_of, written))
    return results
