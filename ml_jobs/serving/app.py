"""`basketcast serve`: online features and champion predictions over HTTP (FastAPI).

    GET  /health               store reachable, feature services, champion models
    POST /features             {"entity": "user", "ids": [1, 2], "feature_service": null}
    POST /predict/demand       {"item_ids": [10, 20], "max_horizon": 7}
    POST /predict/propensity   {"user_ids": [1, 2]}

Every row echoes its id and says ``found``: an id the online store (or the forecast run) does
not know comes back with null values, never an error. A bad request gets a 4xx whose
``detail`` says what to fix: 422 for a missing, mistyped or unknown field, 404 for an unknown
entity or feature service, 413 for a batch over ``max_batch`` ids or a body over
``max_body_bytes``, 400 for a body too deeply nested to parse, 401 for a missing or wrong API key
(when one is configured, see ``ml_jobs.serving.guard``). 503 means a model the endpoint needs
is not there yet (the message says which and why).

Features are read with the lean reader over Feast's online layout (``ml_jobs.serving.reader``),
built once from the registry at start-up; restart the app after ``feast apply`` changes views.
See ``ml_jobs.serving.scorers`` for how each endpoint's model is chosen.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ml_jobs.serving.guard import BodyLimit, api_key_checker
from ml_jobs.serving.reader import OnlineReader, OnlineRows
from ml_jobs.serving.schemas import (
    DemandRequest,
    FeaturesRequest,
    PropensityRequest,
    ServeConfig,
)
from ml_jobs.serving.scorers import DemandForecasts, PropensityModel

DEMAND_SERVICE = "demand_v1"


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    got = f" (got {error['input']!r})" if "input" in error and error["type"] != "missing" else ""
    return f"{where}: {error.get('msg', 'invalid')}{got}"


def _rows(result: OnlineRows) -> list[dict[str, Any]]:
    """One JSON-ready dict per id: id, found, and the values (NaN or inf -> null)."""
    names = result.features
    out = []
    for entity_id, found, values in zip(
        result.ids, result.found.tolist(), result.values.tolist(), strict=True
    ):
        clean = {n: (v if math.isfinite(v) else None) for n, v in zip(names, values, strict=True)}
        out.append({"id": entity_id, "found": found, "features": clean})
    return out


def create_app(config: ServeConfig, reader: OnlineReader | None = None) -> FastAPI:
    """The serving app for ``config``; ``reader`` defaults to one over ``config.online``."""
    from ml_jobs import features

    if reader is None:
        reader = OnlineReader(features.feature_store(config.paths, config.online))
    demand = DemandForecasts(config.paths, config.refresh_s)
    propensity = PropensityModel(config.paths, config.refresh_s)
    app = FastAPI(title="basketcast", summary="online features and demand predictions")
    app.state.reader = reader
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    check_key = api_key_checker(config.api_key)
    scoring = [Depends(check_key)]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI parses a body before it runs dependencies: a caller without the key learns
        # that first (401), not how to fix a body it may not send at all.
        try:
            check_key(request)
        except HTTPException as denied:
            return JSONResponse(
                status_code=denied.status_code,
                content={"detail": denied.detail},
                headers=denied.headers,
            )
        problems = [_describe(e) for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})

    def _check_batch(ids: list[int], field: str) -> None:
        if len(ids) > config.max_batch:
            raise HTTPException(
                413,
                f"{field} has {len(ids)} ids; at most {config.max_batch} per request, "
                "split it into smaller batches",
            )

    def _feature_set(entity: str, service: str | None) -> Any:
        try:
            return reader.feature_set(entity, service)
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/health")
    def health() -> dict[str, Any]:
        snapshot = demand.current()
        scorer = propensity.current()
        return {
            "status": "ok",
            "online_store": reader.kind,
            "project": reader.project,
            "entities": reader.entities,
            "feature_services": reader.services,
            "demand_model": None if snapshot is None else snapshot.run_id,
            "propensity_model": None if scorer is None else scorer.feature_service,
        }

    @app.post("/features", dependencies=scoring)
    def online_features(body: FeaturesRequest) -> JSONResponse:
        _check_batch(body.ids, "ids")
        feature_set = _feature_set(body.entity, body.feature_service)
        result = reader.read(feature_set, body.ids)
        return JSONResponse(
            {
                "entity": body.entity,
                "join_key": feature_set.join_key,
                "feature_service": body.feature_service,
                "rows": _rows(result),
            }
        )

    @app.post("/predict/demand", dependencies=scoring)
    def predict_demand(body: DemandRequest) -> JSONResponse:
        _check_batch(body.item_ids, "item_ids")
        snapshot = demand.current()
        if snapshot is None:
            raise HTTPException(503, demand.problem)
        signals = _rows(reader.read(_feature_set("item", DEMAND_SERVICE), body.item_ids))
        limit = body.max_horizon or math.inf
        rows = []
        for item_id, online in zip(body.item_ids, signals, strict=True):
            forecast = snapshot.by_item.get(item_id)
            rows.append(
                {
                    "item_id": item_id,
                    "found": forecast is not None,
                    "forecast": None
                    if forecast is None
                    else [f for f in forecast if f["horizon"] <= limit],
                    "features": online["features"],
                }
            )
        model = {
            "run_id": snapshot.run_id,
            "model_name": snapshot.model_name,
            "model_version": snapshot.model_version,
            "as_of_date": snapshot.as_of_date,
            "predicted_at": snapshot.predicted_at,
        }
        return JSONResponse({"model": model, "rows": rows})

    @app.post("/predict/propensity", dependencies=scoring)
    def predict_propensity(body: PropensityRequest) -> JSONResponse:
        import pandas as pd

        _check_batch(body.user_ids, "user_ids")
        scorer = propensity.current()
        if scorer is None:
            raise HTTPException(503, propensity.problem)
        feature_set = _feature_set("user", scorer.feature_service)
        result = reader.read(feature_set, body.user_ids)
        known = [i for i, found in enumerate(result.found.tolist()) if found]
        scores: dict[int, tuple[float, float]] = {}
        if known:
            frame = pd.DataFrame(result.values[known], columns=list(result.features))
            frame.insert(0, "user_id", [body.user_ids[i] for i in known])
            scored = scorer.score(frame)
            for user_id, p, spend in scored[["user_id", "p_purchase", "expected_spend"]].itertuples(
                index=False
            ):
                scores[int(user_id)] = (float(p), float(spend))
        rows = []
        for user_id, found in zip(body.user_ids, result.found.tolist(), strict=True):
            p, spend = scores.get(user_id, (None, None)) if found else (None, None)
            rows.append(
                {"user_id": user_id, "found": found, "p_purchase": p, "expected_spend": spend}
            )
        return JSONResponse({"feature_service": scorer.feature_service, "rows": rows})

    return app


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(config: ServeConfig) -> None:
    """Run the app with uvicorn until interrupted."""
    import logging

    import uvicorn

    if config.host not in LOOPBACK and config.api_key is None:
        logging.getLogger(__name__).warning(
            "serving on %s without an API key: anyone who reaches this address can read "
            "features and predictions; set BASKETCAST_API_KEY or --api-key-file",
            config.host,
        )
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
