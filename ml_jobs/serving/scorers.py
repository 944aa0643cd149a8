"""The champion models behind /predict/demand and /predict/propensity.

Demand. The demand champion (``ml.model_runs``, product ``item_demand_forecast``) is a global
model over each item's daily history: lags and rolling windows of units, views and price over
up to a year, plus known-future promotions. Those inputs are not online features (the online
store holds one snapshot per item), so re-scoring it per request would need the warehouse
history at request time and could disagree with the forecasts SQL users read. Instead the app
serves the champion's newest batch forecast, ``predictions.item_demand_forecast_latest``: the
same numbers the warehouse holds, with the run that made them. It is read from the warehouse
read-only, kept in memory, and re-read when ``refresh_s`` has passed (a run the pipeline has
just promoted shows up within that time; while the pipeline holds the warehouse's write lock
the previous forecasts keep being served). The response adds the item's online ``demand_v1``
features beside the forecast so a caller sees the current signals too.

Propensity. The propensity champion is scored per request on the users' online features of
its feature service, through ``ml_jobs.users.serving.load_propensity_scorer(paths)`` (an
object with ``feature_service`` and ``score(frame) -> [user_id, p_purchase,
expected_spend]``). Until a champion exists (or that module is missing) the endpoint answers
503 saying so; loading is retried every ``refresh_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ml_jobs.config import Paths
from ml_jobs.warehouse import table_exists

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemandSnapshot:
    """The champion's newest forecast run, indexed by item."""

    run_id: str
    model_name: str
    model_version: str
    as_of_date: str
    predicted_at: str
    by_item: dict[int, list[dict[str, Any]]] = field(repr=False)


def load_demand_snapshot(paths: Paths) -> DemandSnapshot | None:
    """Read the champion's newest forecasts; None when there are none yet."""
    import duckdb

    if not paths.warehouse.exists():
        return None
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        if not table_exists(con, "predictions.item_demand_forecast_latest"):
            return None
        rows = con.execute(
            """SELECT run_id, model_name, model_version, CAST(as_of_date AS VARCHAR),
                      strftime(predicted_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'),
                      item_id, CAST(target_date AS VARCHAR), horizon, p10, p50, p90
               FROM predictions.item_demand_forecast_latest
               ORDER BY item_id, horizon"""
        ).fetchall()
    if not rows:
        return None
    by_item: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(int(row[5]), []).append(
            {"target_date": row[6], "horizon": row[7], "p10": row[8], "p50": row[9], "p90": row[10]}
        )
    first = rows[0]
    return DemandSnapshot(first[0], first[1], first[2], first[3], first[4], by_item)


class DemandForecasts:
    """The newest champion forecasts, cached and re-read every ``refresh_s`` seconds."""

    def __init__(self, paths: Paths, refresh_s: float) -> None:
        self.paths = paths
        self.refresh_s = refresh_s
        self._snapshot: DemandSnapshot | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.problem = "no demand forecasts loaded yet"

    def current(self) -> DemandSnapshot | None:
        with self._lock:
            if time.monotonic() - self._checked >= self.refresh_s:
                self._checked = time.monotonic()
                try:
                    snapshot = load_demand_snapshot(self.paths)
                except Exception as error:  # a locked or half-built warehouse: keep serving
                    log.warning("demand forecasts not refreshed: %s", error)
                    self.problem = f"warehouse unreadable: {error}"
                else:
                    if snapshot is not None:
                        self._snapshot = snapshot
                    elif self._snapshot is None:
                        self.problem = (
                            f"no champion demand forecasts in {self.paths.warehouse} "
                            "(predictions.item_demand_forecast_latest is empty or missing); "
                            "run `basketcast forecast` first"
                        )
            return self._snapshot


class PropensityModel:
    """The propensity champion's scorer, loaded on first use and retried while missing."""

    def __init__(self, paths: Paths, refresh_s: float) -> None:
        self.paths = paths
        self.refresh_s = refresh_s
        self._scorer: Any = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.problem = "no propensity model loaded yet"

    def current(self) -> Any:
        with self._lock:
            if self._scorer is None and time.monotonic() - self._checked >= self.refresh_s:
                self._checked = time.monotonic()
                self._scorer, self.problem = self._load()
            return self._scorer

    def _load(self) -> tuple[Any, str]:
        try:
            from ml_jobs.users.serving import load_propensity_scorer
        except ImportError as error:
            return None, f"no propensity model is available in this installation ({error})"
        try:
            scorer = load_propensity_scorer(self.paths)
        except Exception as error:
            log.warning("propensity scorer not loaded: %s", error)
            return None, f"no champion propensity model could be loaded: {error}"
        if scorer is None:
            return None, "no champion propensity model is registered; train one first"
        return scorer, ""
