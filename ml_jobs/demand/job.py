"""The item demand forecast job: backtest, register, refit, forecast, write back, promote.

For each configured model the job
  1. registers a run in `ml.model_runs` (status `running`),
  2. backtests it on rolling origins and writes `ml.backtest_metrics`,
  3. refits it on all history and forecasts the next `horizon` days for every item,
  4. saves its artifacts under `artifacts/<run_id>/`,
  5. writes the forecast to `predictions.item_demand_forecast` in one transaction and marks the
     run `succeeded` (or `failed`, keeping the error, without stopping the other models),
then lets each succeeded run challenge the champion, so `item_demand_forecast_latest` serves the
best model, and finally rebuilds the HTML report (`$BASKETCAST_HOME/reports/report.html`).
This is the function the CLI and the Airflow DAG call.

Grain: daily by default; `grain="week"` (CLI `--grain week`, env BASKETCAST_DEMAND_GRAIN) runs
every model on complete weeks (`grain.py`), horizons in weeks (default 8), and writes rows with
`grain = 'week'`, target_date the week's Monday and as_of_date the last day of data used. Weekly
runs are registered as `<model>_weekly` and never challenge the champion: their scores are in
weekly units, and `item_demand_forecast_latest` (what the inventory plan reads) stays daily.

The torch model checkpoints every epoch under `artifacts/checkpoints/torch_quantile/`, one folder
per fit (keyed by the data it sees and its config): a killed job started again resumes each fit
after its last finished epoch. The folder is cleared once the run has succeeded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from ml_jobs.config import Paths
from ml_jobs.demand.backtest import BacktestConfig, backtest, summarize
from ml_jobs.demand.base import DemandModel
from ml_jobs.demand.data import DemandData, known_future, load_demand_data, load_truth
from ml_jobs.demand.grain import DEFAULT_HORIZON, STEP_DAYS, check_grain, default_grain, on_grid
from ml_jobs.demand.seasonal_naive import SeasonalNaive, SeasonalNaiveParams
from ml_jobs.demand.torch_forecaster import TorchQuantile, TorchQuantileParams
from ml_jobs.demand.torch_train import TrainConfig
from ml_jobs.demand.xgb import XGBoostQuantile, XGBoostQuantileParams
from ml_jobs.registry import (
    DEMAND_PRODUCT,
    Promotion,
    RunRecord,
    current_champion,
    finish_run,
    git_sha,
    new_run_id,
    promote_if_better,
    start_run,
    write_backtest_metrics,
)
from ml_jobs.warehouse import connect, ensure_prediction_schema, write_predictions

MODEL_NAMES = ("seasonal_naive", "xgboost_quantile", "torch_quantile")
BACKTEST_FORECASTS = "backtest_forecasts.parquet"  # per run, beside its model artifacts


# Weekly defaults: a year is 52 columns, so every origin is trained on and the torch model reads
# half a year (its daily window of 112 columns would be two years of weeks).
WEEKLY_XGBOOST = XGBoostQuantileParams(n_origins=26, origin_stride=1, row_fraction=1.0)
WEEKLY_TORCH = TorchQuantileParams(window=26, train=TrainConfig(origin_stride=1))


@dataclass(frozen=True)
class DemandJobConfig:
    """The demand job's settings; `horizon` counts periods of the grain (None: 28 days / 8
    weeks). On the weekly grain, default model settings become the WEEKLY_* ones."""

    horizon: int | None = None  # an int once constructed (see __post_init__)
    grain: str = field(default_factory=default_grain)  # day | week
    backtest_cutoffs: int = 2
    seed: int = 0
    nthread: int = 2
    models: tuple[str, ...] = MODEL_NAMES
    seasonal_naive: SeasonalNaiveParams = field(default_factory=SeasonalNaiveParams)
    xgboost: XGBoostQuantileParams = field(default_factory=XGBoostQuantileParams)
    torch: TorchQuantileParams = field(default_factory=TorchQuantileParams)
    write_report: bool = True  # rebuild reports/report.html at the end of the job

    def __post_init__(self) -> None:
        check_grain(self.grain)
        if self.horizon is None:
            object.__setattr__(self, "horizon", DEFAULT_HORIZON[self.grain])
        if self.horizon < 1:
            raise ValueError(f"demand horizon must be at least 1 {self.grain}, got {self.horizon}")
        if self.grain == "week":
            if self.xgboost == XGBoostQuantileParams():
                object.__setattr__(self, "xgboost", WEEKLY_XGBOOST)
            if self.torch == TorchQuantileParams():
                object.__setattr__(self, "torch", WEEKLY_TORCH)

    @property
    def step_days(self) -> int:
        return STEP_DAYS[self.grain]

    def registry_name(self, model: str) -> str:
        """The model's name in the registry and prediction rows: weekly runs are their own."""
        return model if self.grain == "day" else f"{model}_weekly"


@dataclass(frozen=True)
class ModelRunResult:
    model_name: str
    run_id: str
    status: str  # succeeded | failed
    rows_written: int = 0
    artifact_uri: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # backtest means over cutoffs
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class DemandJobResult:
    as_of_date: dt.date
    n_items: int
    runs: list[ModelRunResult]
    promotions: list[Promotion]
    champion_run_id: str | None
    backtest: pd.DataFrame  # long backtest metrics of every model
    seconds: float

    @property
    def failed(self) -> list[ModelRunResult]:
        return [run for run in self.runs if run.status != "succeeded"]


class DemandJobFailed(RuntimeError):
    """Raised after the job finished when a model failed; carries the full result."""

    def __init__(self, result: DemandJobResult) -> None:
        names = ", ".join(f"{run.model_name} ({run.error})" for run in result.failed)
        super().__init__(f"item demand models failed: {names}")
        self.result = result


def make_model(
    name: str,
    config: DemandJobConfig,
    checkpoint_root: Path | None = None,
    console: Console | None = None,
) -> DemandModel:
    """A fresh, unfitted forecaster by registry name (torch: checkpointing under the root)."""
    if name == "seasonal_naive":
        return SeasonalNaive(config.seasonal_naive)
    if name == "xgboost_quantile":
        params = dataclasses.replace(config.xgboost, seed=config.seed, nthread=config.nthread)
        return XGBoostQuantile(dataclasses.replace(params, horizon=config.horizon))
    if name == "torch_quantile":
        train = dataclasses.replace(config.torch.train, seed=config.seed)
        model = TorchQuantile(
            dataclasses.replace(config.torch, horizon=config.horizon, train=train)
        )
        model.checkpoint_root = checkpoint_root
        model.console = console
        return model
    raise ValueError(f"unknown demand model {name!r}; expected one of {MODEL_NAMES}")


def check_forecast(forecast: pd.DataFrame, items: pd.Series, horizon: int) -> None:
    """Refuse to write a forecast that misses an item or horizon or breaks 0<=p10<=p50<=p90."""
    expected = items.nunique() * horizon
    if len(forecast) != expected or set(forecast["item_id"]) != set(items):
        raise ValueError(f"forecast has {len(forecast)} rows, expected {expected}")
    q = forecast[["p10", "p50", "p90"]]
    if (
        q.isna().any().any()
        or not ((q["p10"] >= 0) & (q["p10"] <= q["p50"]) & (q["p50"] <= q["p90"])).all()
    ):
        raise ValueError("forecast quantiles must satisfy 0 <= p10 <= p50 <= p90")


def _run_model(
    name: str,
    data: DemandData,
    truth: pd.DataFrame | None,
    paths: Paths,
    config: DemandJobConfig,
    sha: str | None,
    console: Console,
) -> tuple[ModelRunResult, pd.DataFrame]:
    """One model's run from registration to written forecast; failures are recorded."""
    grain = config.grain
    started = time.perf_counter()
    registered = config.registry_name(name)
    checkpoints = paths.artifacts / "checkpoints" / registered
    probe = make_model(name, config)
    run_id = new_run_id(registered)
    artifact_dir = paths.artifacts / run_id
    record = RunRecord(
        run_id=run_id,
        model_name=registered,
        model_kind=probe.kind,
        model_version=probe.version,
        train_start=data.history["demand_date"].min().date(),
        train_end=data.last_day,
        params={**probe.params, "grain": config.grain},
        artifact_uri=str(artifact_dir),
        device=getattr(probe, "device", "cpu"),
        git_sha=sha,
    )
    with connect(paths.warehouse) as con:
        start_run(con, record)
    metrics = pd.DataFrame()
    try:
        backtest_config = BacktestConfig(n_cutoffs=config.backtest_cutoffs, horizon=config.horizon)
        if config.grain != "day":  # windows of a whole horizon, as the daily 28 x 28 days
            backtest_config = dataclasses.replace(
                backtest_config, step_days=config.horizon * config.step_days
            )
        with console.status(f"{name}: backtest on {config.backtest_cutoffs} cutoffs"):
            result = backtest(
                lambda: make_model(name, config, checkpoints, console),
                data,
                backtest_config,
                truth,
            )
        metrics = result.metrics.assign(model_name=registered)
        summary = summarize(metrics)
        with connect(paths.warehouse) as con:
            write_backtest_metrics(con, run_id, metrics)
        if not result.cutoffs:
            console.log(f"{name}: history too short to backtest (no scores to compete with)")
        console.log(
            f"{name}: backtest {len(result.cutoffs)} cutoffs, "
            f"pinball {summary.get('pinball_mean', float('nan')):.3f}, "
            f"WAPE {summary.get('wape', float('nan')):.3f}, "
            f"coverage {summary.get('coverage_p10_p90', float('nan')):.2f}"
        )

        with console.status(f"{name}: fit on all history and forecast {config.horizon} {grain}s"):
            model = make_model(name, config, checkpoints, console).fit(data.history)
            future = known_future(data.history, data.as_of, config.horizon, data.promotions)
            forecast = model.predict(data.history, data.as_of, config.horizon, future)
            forecast = on_grid(forecast, data.as_of, data.step_days)
            check_forecast(forecast, data.history["item_id"], config.horizon)

        model.save(artifact_dir)
        if not result.forecasts.empty:  # the report plots these against what really sold
            result.forecasts.to_parquet(artifact_dir / BACKTEST_FORECASTS, index=False)
        run_info = {
            "run_id": run_id,
            "model_name": registered,
            "model_version": probe.version,
            "grain": config.grain,
            "as_of_date": data.last_day.isoformat(),
            "backtest_cutoffs": [c.isoformat() for c in result.cutoffs],
            "backtest": summary,
            "job_config": dataclasses.asdict(config),
        }
        (artifact_dir / "config.json").write_text(json.dumps(run_info, indent=2, default=str))

        frame = forecast.assign(
            run_id=run_id,
            model_name=registered,
            model_version=probe.version,
            as_of_date=pd.Timestamp(data.last_day),
            predicted_at=pd.Timestamp.now(tz="UTC"),
            grain=config.grain,
        )
        rows = write_predictions(paths.warehouse, DEMAND_PRODUCT, frame)
        run_metrics: dict[str, Any] = {**summary, "backtest_cutoffs": run_info["backtest_cutoffs"]}
        with connect(paths.warehouse) as con:
            finish_run(con, run_id, "succeeded", run_metrics, str(artifact_dir))
        shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while the run can resume
        seconds = time.perf_counter() - started
        console.log(f"{name}: wrote {rows} forecast rows as {run_id} ({seconds:.1f}s)")
        return (
            ModelRunResult(
                registered, run_id, "succeeded", rows, str(artifact_dir), summary, None, seconds
            ),
            metrics,
        )
    except Exception as exc:  # a failed model is recorded and the job goes on with the next
        error = f"{type(exc).__name__}: {exc}"
        with connect(paths.warehouse) as con:
            finish_run(con, run_id, "failed", {"error": error})
        console.log(f"[red]{name}: failed: {error}")
        seconds = time.perf_counter() - started
        return ModelRunResult(registered, run_id, "failed", error=error, seconds=seconds), metrics


def run_demand_forecast(
    paths: Paths,
    config: DemandJobConfig | None = None,
    console: Console | None = None,
    target: str | None = None,
) -> DemandJobResult:
    """Backtest, register, forecast and promote every configured item demand model.

    The history is read from where the dbt output `target` built the warehouse (unset:
    BASKETCAST_DBT_TARGET; ml_jobs.sources); runs and forecasts go to warehouse.duckdb.

    Raises DemandJobFailed (with the result attached) after finishing when any model failed.
    """
    config = config or DemandJobConfig()
    console = console or Console(stderr=True)
    started = time.perf_counter()
    for name in config.models:
        make_model(name, config)  # unknown names fail before anything is written

    with console.status("loading marts.fct_item_daily_demand"):
        data = load_demand_data(paths, config.grain, target)
    truth = load_truth(paths.truth) if config.grain == "day" else None  # truth is daily
    console.log(
        f"demand history ({config.grain}ly): {data.n_items} items, {len(data.history)} rows, "
        f"as of {data.last_day}"
        + ("" if data.promotions is not None else " (no staged promotions)")
        + ("" if truth is None else " (synthetic truth found: scored against it too)")
    )
    with connect(paths.warehouse) as con:
        ensure_prediction_schema(con)
    sha = git_sha()

    runs: list[ModelRunResult] = []
    metrics: list[pd.DataFrame] = []
    promotions: list[Promotion] = []
    for name in config.models:
        run, run_metrics = _run_model(name, data, truth, paths, config, sha, console)
        runs.append(run)
        metrics.append(run_metrics.assign(run_id=run.run_id))
        if run.status == "succeeded" and config.grain == "day":  # challenge at once: a later
            # kill keeps this decision; weekly runs are scored in other units and never compete
            with connect(paths.warehouse) as con:
                promotion = promote_if_better(con, run.run_id, DEMAND_PRODUCT)
            promotions.append(promotion)
            console.log(f"{run.model_name}: {promotion.reason}")

    with connect(paths.warehouse) as con:
        champion = current_champion(con, DEMAND_PRODUCT)

    result = DemandJobResult(
        as_of_date=data.last_day,
        n_items=data.n_items,
        runs=runs,
        promotions=promotions,
        champion_run_id=champion["run_id"] if champion else None,
        backtest=pd.concat(metrics, ignore_index=True),
        seconds=time.perf_counter() - started,
    )
    console.log(f"champion: {result.champion_run_id} ({result.seconds:.1f}s in all)")
    if config.write_report:
        from ml_jobs.report import build_report

        console.log(f"report: {build_report(paths, target)}")
    if result.failed:
        raise DemandJobFailed(result)
    return result
