"""Daily batch prediction with the demand champion: no training, just the saved model.

The weekly training job decides who is champion; every day this module loads that champion from
its artifact folder, scores it on the history up to the run's as-of date and writes the forecast
under the champion's run_id and that as-of date. Rerunning a date replaces that date's rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.demand.base import DemandModel
from ml_jobs.demand.data import history_until, known_future, load_demand_data
from ml_jobs.registry import DEMAND_PRODUCT, current_champion
from ml_jobs.warehouse import connect, write_predictions


@dataclass(frozen=True)
class ChampionForecast:
    run_id: str
    model_name: str
    as_of_date: dt.date
    rows: int


def load_champion_model(model_name: str, artifact_dir: Path, history: pd.DataFrame) -> DemandModel:
    """The saved forecaster of a run; stateless baselines are refitted on `history`."""
    if model_name == "xgboost_quantile":
        from ml_jobs.demand.xgb import XGBoostQuantile

        return XGBoostQuantile.load(artifact_dir)
    if model_name == "torch_quantile":
        from ml_jobs.demand.torch_forecaster import TorchQuantile

        return TorchQuantile.load(artifact_dir)
    if model_name == "seasonal_naive":
        from ml_jobs.demand.seasonal_naive import SeasonalNaive

        return SeasonalNaive().fit(history)
    raise ValueError(f"no loader for demand model {model_name!r}")


def predict_with_champion(
    paths: Paths, as_of: dt.date | None = None, horizon: int = 28, target: str | None = None
) -> ChampionForecast | None:
    """Forecast every item with the champion as of `as_of` (default: the last day of data),
    on the history of the warehouse `target` built (ml_jobs.sources).

    Returns None when no champion exists yet: the caller trains one first.
    """
    if not paths.warehouse.exists():  # no registry yet (the inputs may live on Spark)
        return None
    with connect(paths.warehouse, read_only=True) as con:
        champion = current_champion(con, DEMAND_PRODUCT)
        if champion is None:
            return None
        model_version, artifact_uri = con.execute(
            "SELECT model_version, artifact_uri FROM ml.model_runs WHERE run_id = ?",
            [champion["run_id"]],
        ).fetchone()
    data = load_demand_data(paths, target=target)
    as_of = min(as_of or data.as_of, data.as_of)
    history = history_until(data.history, as_of)
    model = load_champion_model(champion["model_name"], Path(artifact_uri), history)
    future = known_future(history, as_of, horizon, data.promotions)
    forecast = model.predict(history, as_of, horizon, future)
    forecast.insert(0, "run_id", champion["run_id"])
    forecast.insert(1, "model_name", champion["model_name"])
    forecast.insert(2, "model_version", model_version)
    forecast.insert(3, "as_of_date", pd.Timestamp(as_of).date())
    forecast.insert(4, "predicted_at", pd.Timestamp.now(tz="UTC"))
    rows = write_predictions(paths.warehouse, DEMAND_PRODUCT, forecast)
    return ChampionForecast(champion["run_id"], champion["model_name"], as_of, rows)
