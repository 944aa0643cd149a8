"""The user models job: backtest, fit, score every active user, write back, promote.

1. load the catalogue, the event log, the dbt training set and the point-in-time features
   (ml_jobs.users.inputs);
2. backtest every model on the newest labelled cutoffs (ml_jobs.users.backtest);
3. fit every model on the newest labelled cutoffs and score the users active in the 90 days
   before the day after the data ends;
4. per model: register a run, write its backtest rows, save artifacts, write its table
   (predictions.user_purchase_propensity / user_category_affinity /
   user_item_recommendations) atomically, mark it succeeded (or failed, with the error);
5. let each product's runs challenge its champion (baselines first), so the `_latest`
   views serve the best model of each product.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from ml_jobs.config import Paths
from ml_jobs.registry import (
    RunRecord,
    finish_run,
    git_sha,
    new_run_id,
    promote_if_better,
    start_run,
    write_backtest_metrics,
)
from ml_jobs.users import data
from ml_jobs.users.backtest import (
    AFFINITY,
    MODELS,
    PROPENSITY,
    Fitted,
    ModelOutputs,
    UserModelsConfig,
    fit_models,
    score_models,
    summarize,
)
from ml_jobs.users.inputs import load_inputs
from ml_jobs.users.ranking import Ranked
from ml_jobs.warehouse import connect, ensure_prediction_schema, write_predictions


@dataclass(frozen=True)
class UserRunResult:
    model_name: str
    product: str
    run_id: str
    status: str
    rows_written: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class UserJobResult:
    as_of_date: dt.date
    n_users: int
    runs: list[UserRunResult]
    champions: dict[str, str | None]  # product -> champion run_id after promotion
    promotions: list[dict[str, Any]]
    backtest: pd.DataFrame
    seconds: dict[str, float]


def propensity_frame(users: np.ndarray, p: np.ndarray, spend: np.ndarray, window: int):
    """Decile 1 holds the 10 % of users most likely to buy, decile 10 the least likely."""
    order = np.argsort(-p, kind="stable")
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(len(p))
    decile = (rank * 10 // max(len(p), 1) + 1).astype(np.int32)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "window_days": np.int32(window),
            "p_purchase": p.astype(np.float64),
            "expected_spend": spend.astype(np.float64),
            "decile": decile,
        }
    )


def ranked_frame(users: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int, column: str):
    """Top `k` columns of `scores` per user as (user_id, <column>, score, rank 1..k)."""
    return ranked_rows(users, Ranked.from_scores(scores, k), ids, k, column)


def ranked_rows(users: np.ndarray, ranked: Ranked, ids: np.ndarray, k: int, column: str):
    """The first `k` of each user's ranked columns as (user_id, <column>, score, rank 1..k)."""
    k = min(k, ranked.items.shape[1])
    best, picked = ranked.items[:, :k], ranked.scores[:, :k]
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(users.astype(np.int64), k),
            column: ids[best.reshape(-1)].astype(np.int64),
            "score": picked.reshape(-1).astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(users)),
        }
    )
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)


def prediction_frame(
    name: str, out: ModelOutputs, users: np.ndarray, catalog: data.Catalog, config
) -> pd.DataFrame:
    product = MODELS[name][0]
    if product == PROPENSITY:
        p, spend = out.propensity[name]
        return propensity_frame(users, p, spend, config.window_days)
    if product == AFFINITY:
        probs = out.affinity[name]
        return ranked_frame(users, probs, catalog.category_ids, probs.shape[1], "category_id")
    return ranked_rows(users, out.ranking[name], catalog.item_ids, config.top_k, "item_id")


def _save_artifacts(name: str, fitted: Fitted, directory, info: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if name == "xgboost_propensity" and fitted.xgb is not None:
        fitted.xgb.save(directory)
    elif name.startswith("torch_sequence") and fitted.seq is not None:
        fitted.seq.save(directory)
    (directory / "config.json").write_text(json.dumps(info, indent=2, default=str))


def run_user_models(
    paths: Paths,
    config: UserModelsConfig | None = None,
    console: Console | None = None,
    target: str | None = None,
) -> UserJobResult:
    """Backtest, fit, score, write back and promote every user model (see module doc).

    `target` is the dbt output whose tables are the inputs (unset: BASKETCAST_DBT_TARGET)."""
    config = config or UserModelsConfig()
    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    inputs = load_inputs(paths, config, console, target)
    timings["load_and_features"] = time.perf_counter() - started

    mark = time.perf_counter()
    metrics = inputs.backtest(config, console.log)
    timings["backtest"] = time.perf_counter() - mark

    mark = time.perf_counter()
    dates = inputs.train_all.cutoff_ts.dt.date.to_numpy()
    final_rows = inputs.train_all.subset(np.isin(dates, inputs.final_days))
    fitted = fit_models(final_rows, inputs.feature_names, inputs.catalog, config, console.log)
    outputs = score_models(
        fitted, inputs.predict_ex, inputs.events, inputs.catalog, inputs.predict_ts, config
    )
    timings["fit_and_score"] = time.perf_counter() - mark

    mark = time.perf_counter()
    runs = _write_runs(
        paths,
        config,
        fitted,
        outputs,
        inputs.predict_ex.user_id,
        inputs.catalog,
        metrics,
        inputs.as_of,
        inputs.final_days,
        console,
    )
    promotions, champions = _promote(paths, runs, console)
    timings["write_back"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    console.log(f"user models done in {timings['total']:.1f}s")
    n_users = len(inputs.predict_ex)
    return UserJobResult(inputs.as_of, n_users, runs, champions, promotions, metrics, timings)


def _write_runs(
    paths: Paths,
    config: UserModelsConfig,
    fitted: Fitted,
    outputs: ModelOutputs,
    users: np.ndarray,
    catalog: data.Catalog,
    metrics: pd.DataFrame,
    as_of: dt.date,
    train_days: list[dt.date],
    console: Console,
) -> list[UserRunResult]:
    sha = git_sha()
    summary = summarize(metrics)
    produced = {**outputs.propensity, **outputs.affinity, **outputs.ranking}
    runs: list[UserRunResult] = []
    with connect(paths.warehouse) as con:
        ensure_prediction_schema(con)
    for name, (product, _metric) in MODELS.items():
        if name not in produced:
            continue
        kind = (
            "torch"
            if name.startswith("torch")
            else "xgboost"
            if name.startswith("xgb")
            else "baseline"
        )
        run_id = new_run_id(name)
        directory = paths.artifacts / run_id
        device = str(fitted.seq.device) if kind == "torch" and fitted.seq is not None else "cpu"
        record = RunRecord(
            run_id=run_id,
            model_name=name,
            model_kind=kind,
            model_version="1",
            train_start=train_days[0],
            train_end=as_of,
            params=dataclasses.asdict(config),
            feature_service=data.FEATURE_SERVICE,
            artifact_uri=str(directory),
            device=device,
            git_sha=sha,
        )
        with connect(paths.warehouse) as con:
            start_run(con, record)
        mine = metrics[metrics["model_name"] == name]
        headline = summary.loc[name].dropna().to_dict() if name in summary.index else {}
        try:
            with connect(paths.warehouse) as con:
                write_backtest_metrics(con, run_id, mine)
            info = {
                "run_id": run_id,
                "model_name": name,
                "product": product,
                "as_of_date": as_of,
                "backtest": headline,
            }
            _save_artifacts(name, fitted, directory, info)
            frame = prediction_frame(name, outputs, users, catalog, config).assign(
                run_id=run_id,
                model_name=name,
                model_version="1",
                as_of_date=pd.Timestamp(as_of),
                predicted_at=pd.Timestamp.now(tz="UTC"),
            )
            written = write_predictions(paths.warehouse, product, frame)
            with connect(paths.warehouse) as con:
                finish_run(con, run_id, "succeeded", headline, str(directory))
            console.log(f"{name}: {written} rows to predictions.{product} as {run_id}")
            runs.append(UserRunResult(name, product, run_id, "succeeded", written, headline))
        except Exception as exc:  # recorded; the other models still run
            error = f"{type(exc).__name__}: {exc}"
            with connect(paths.warehouse) as con:
                finish_run(con, run_id, "failed", {"error": error})
            console.log(f"[red]{name}: failed: {error}")
            runs.append(UserRunResult(name, product, run_id, "failed", error=error))
    return runs


def _promote(paths: Paths, runs: list[UserRunResult], console: Console):
    """Baselines challenge first, the torch model last, per product."""
    promotions: list[dict[str, Any]] = []
    champions: dict[str, str | None] = {}
    order = sorted(runs, key=lambda r: r.model_name.startswith("torch"))
    with connect(paths.warehouse) as con:
        for run in order:
            if run.status != "succeeded":
                continue
            metric = MODELS[run.model_name][1]
            result = promote_if_better(con, run.run_id, product=run.product, metric=metric)
            promotions.append({"product": run.product, **dataclasses.asdict(result)})
            champions[run.product] = result.champion_run_id
            console.log(f"{run.product}: {run.model_name} - {result.reason}")
    return promotions, champions
