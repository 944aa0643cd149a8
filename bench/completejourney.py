"""Complete Journey: basketcast's demand models next to statsforecast and mlforecast.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'     # statsforecast, mlforecast, lightgbm
    .venv/bin/python bench/completejourney.py                  # ingest, dbt, every model, record
    .venv/bin/python bench/completejourney.py --home /tmp/cj --skip-build --no-record
    .venv/bin/python bench/completejourney.py --skip-build --models none   # the peers only
    .venv/bin/python bench/completejourney.py --skip-build --grain week --no-peers  # weekly

The series: the top 500 products by transaction lines (fuel and coupon lines excluded), daily
units from `marts.fct_item_daily_demand` (`basketcast ingest completejourney`, then the dbt
build). The windows: 3 rolling origins 28 days apart, each forecasting the next 28 days from the
history up to its cutoff. Every model, ours and the peers, is scored by the same function
(`ml_jobs.demand.metrics.score`): WAPE of p50 and the mean pinball loss of p10/p50/p90, averaged
over the windows. Peer quantiles: native 80 % intervals (SeasonalNaive, AutoETS) or conformal
ones from two earlier windows (CrostonOptimized, LightGBM), lower/upper bound = p10/p90.

`--grain week`: our models on complete Monday-to-Sunday weeks (`ml_jobs.demand.grain`), 3
windows of 4 weeks 28 days apart, scored the same way in weekly units (the peers run daily only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ml_jobs.config import Paths, quiet_environment
from ml_jobs.demand.backtest import BacktestConfig, backtest, backtest_cutoffs
from ml_jobs.demand.data import DemandData, load_demand_data
from ml_jobs.demand.metrics import score, seasonal_naive_scale

RESULTS = Path(__file__).with_name("RESULTS.md")
HORIZON = 28
WINDOWS = 3
WEEKLY_HORIZON = 4  # weeks: the same 28 days per window as the daily run
LEVEL = 80  # the p10-p90 interval


def prepare(paths: Paths, top_products: int, skip_build: bool) -> None:
    """Ingest Complete Journey and build the warehouse tables the models read."""
    if skip_build and paths.warehouse.exists():
        return
    from ml_jobs import dbt_runner
    from ml_jobs.ingest.completejourney import CompleteJourneyConfig, ingest_completejourney

    ingest_completejourney(paths, CompleteJourneyConfig(top_products=top_products))
    os.environ["BASKETCAST_HOME"] = str(paths.home)
    dbt_runner.run_dbt(["run", "--select", "+fct_item_daily_demand"], paths)


# --- ours ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchBudget:
    """How the torch model is trained here: a CPU epoch over every origin of 500 items costs
    minutes on a shared two-core machine, so origins are thinned and each fit has a time cap."""

    origin_stride: int = 5  # days between training origins (the job's default is 2)
    epochs: int = 6
    max_seconds: float = 600.0  # per fit: stop after the epoch that passes it
    threads: int = 2


def our_models(
    threads: int, budget: TorchBudget, grain: str = "day"
) -> dict[str, Callable[[], object]]:
    from ml_jobs.demand.job import DemandJobConfig, make_model

    horizon = HORIZON if grain == "day" else WEEKLY_HORIZON
    config = DemandJobConfig(nthread=threads, grain=grain, horizon=horizon)
    try:
        from ml_jobs.demand.torch_forecaster import TorchQuantileParams
        from ml_jobs.demand.torch_train import TrainConfig
    except ImportError:  # no torch installed: the other models only
        names = ("seasonal_naive", "xgboost_quantile")
    else:
        names = ("seasonal_naive", "xgboost_quantile", "torch_quantile")
        if grain == "day":
            train = TrainConfig(
                epochs=budget.epochs,
                origin_stride=budget.origin_stride,
                max_seconds=budget.max_seconds,
                threads=budget.threads,
            )
            config = replace(config, torch=TorchQuantileParams(train=train))
        else:  # a year of weeks is small: every origin, the job's weekly settings, capped
            train = replace(
                config.torch.train, max_seconds=budget.max_seconds, threads=budget.threads
            )
            config = replace(config, torch=replace(config.torch, train=train))
    return {name: partial(make_model, name, config) for name in names}


def windows(data: DemandData) -> BacktestConfig:
    """3 windows of 28 days: 28 days, or 4 weeks on the weekly grain."""
    horizon = HORIZON if data.grain == "day" else WEEKLY_HORIZON
    return BacktestConfig(n_cutoffs=WINDOWS, horizon=horizon, step_days=28)


def run_ours(name: str, factory: Callable[[], object], data: DemandData) -> pd.DataFrame:
    """Forecasts joined to actuals (cutoff, item_id, target_date, actual, p10, p50, p90)."""
    result = backtest(factory, data, windows(data))
    return result.forecasts[["cutoff", "item_id", "target_date", "actual", "p10", "p50", "p90"]]


# --- peers -----------------------------------------------------------------------------------


def long_series(history: pd.DataFrame) -> pd.DataFrame:
    """Nixtla's long format: unique_id, ds, y (stock-out days, if any, as observed zeros)."""
    frame = history[["item_id", "demand_date", "units_sold"]]
    frame = frame.rename(columns={"item_id": "unique_id", "demand_date": "ds", "units_sold": "y"})
    return frame.fillna({"y": 0.0}).sort_values(["unique_id", "ds"], ignore_index=True)


def pad_short(train: pd.DataFrame, min_days: int) -> pd.DataFrame:
    """Zeros before the first day of series shorter than `min_days` (conformal intervals need
    2 x 28 + 1 observations); an item first sold late had no sales before, so zero is the truth
    of the shop, not an invention."""
    end = train["ds"].max()
    first = train.groupby("unique_id")["ds"].min()
    short = first[first > end - pd.Timedelta(days=min_days - 1)]
    if short.empty:
        return train
    start = end - pd.Timedelta(days=min_days - 1)
    pads = [
        pd.DataFrame(
            {"unique_id": item, "ds": pd.date_range(start, day, inclusive="left"), "y": 0.0}
        )
        for item, day in short.items()
    ]
    return pd.concat([train, *pads]).sort_values(["unique_id", "ds"], ignore_index=True)


def _quantiles(forecast: pd.DataFrame, column: str) -> pd.DataFrame:
    lo, hi = f"{column}-lo-{LEVEL}", f"{column}-hi-{LEVEL}"
    out = forecast[["unique_id", "ds"]].copy()
    out["p50"] = forecast[column].clip(lower=0)
    out["p10"] = np.minimum(forecast[lo].clip(lower=0), out["p50"])
    out["p90"] = np.maximum(forecast[hi].clip(lower=0), out["p50"])
    return out


def run_statsforecast(train: pd.DataFrame, threads: int) -> dict[str, pd.DataFrame]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, CrostonOptimized, SeasonalNaive
    from statsforecast.utils import ConformalIntervals

    conformal = ConformalIntervals(h=HORIZON, n_windows=2)
    models = [
        SeasonalNaive(season_length=7),
        AutoETS(season_length=7),
        CrostonOptimized(prediction_intervals=conformal),
    ]
    sf = StatsForecast(models=models, freq="D", n_jobs=threads)
    forecast = sf.forecast(df=train, h=HORIZON, level=[LEVEL]).reset_index()
    return {
        name: _quantiles(forecast, name)
        for name in ("SeasonalNaive", "AutoETS", "CrostonOptimized")
    }


def run_mlforecast(train: pd.DataFrame, threads: int) -> dict[str, pd.DataFrame]:
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.utils import PredictionIntervals

    model = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, n_jobs=threads, verbose=-1)
    mlf = MLForecast(
        models={"LightGBM": model},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={1: [RollingMean(7), RollingMean(28)], 7: [RollingMean(7)]},
        date_features=["dayofweek"],
    )
    mlf.fit(train, prediction_intervals=PredictionIntervals(n_windows=2, h=HORIZON))
    forecast = mlf.predict(HORIZON, level=[LEVEL])
    return {"LightGBM": _quantiles(forecast, "LightGBM")}


def run_peers(
    data: DemandData, cutoffs: list[dt.date], threads: int, seconds: dict[str, float]
) -> dict[str, pd.DataFrame]:
    """Every peer's forecasts joined to actuals, all windows stacked, keyed by model name.

    `seconds` gets each model's time over all windows; the statsforecast models are fitted in
    one call, so each of them is charged that call's time.
    """
    series = long_series(data.history)
    actual = series.rename(columns={"y": "actual"})
    out: dict[str, list[pd.DataFrame]] = {}
    for cutoff in cutoffs:
        train = pad_short(series[series["ds"] <= pd.Timestamp(cutoff)], 2 * HORIZON + 1)
        for runner in (run_statsforecast, run_mlforecast):
            started = time.perf_counter()
            forecasts = runner(train, threads)
            took = time.perf_counter() - started
            for name, forecast in forecasts.items():
                joined = forecast.merge(actual, on=["unique_id", "ds"], how="inner")
                joined = joined.rename(columns={"unique_id": "item_id", "ds": "target_date"})
                out.setdefault(name, []).append(joined.assign(cutoff=cutoff))
                seconds[name] = seconds.get(name, 0.0) + took
            print(f"  {runner.__name__} at {cutoff}: {took:.1f} s")
    return {name: pd.concat(parts, ignore_index=True) for name, parts in out.items()}


# --- scoring and report ----------------------------------------------------------------------


def summarize(scored: pd.DataFrame, history: pd.DataFrame) -> dict[str, float]:
    """WAPE, mean pinball and coverage per window (scale from the window's history), averaged."""
    rows = []
    for cutoff, part in scored.groupby("cutoff"):
        seen = history[history["demand_date"] <= pd.Timestamp(cutoff)]
        part = part.assign(scale=part["item_id"].map(seasonal_naive_scale(seen)))
        rows.append(score(part))
    frame = pd.DataFrame(rows)
    return {k: float(frame[k].mean()) for k in ("wape", "pinball_mean", "coverage_p10_p90")}


def report(results: dict[str, dict[str, float]], seconds: dict[str, float], meta: str) -> str:
    lines = [
        f"## Complete Journey vs statsforecast / mlforecast — {meta}",
        "",
        "| model | source | WAPE | mean pinball p10/p50/p90 | coverage p10-p90 | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in sorted(results.items(), key=lambda kv: kv[1]["pinball_mean"]):
        source = "basketcast" if name.islower() else "peer"
        lines.append(
            f"| {name} | {source} | {m['wape']:.3f} | {m['pinball_mean']:.3f} | "
            f"{m['coverage_p10_p90']:.2f} | {seconds[name]:.0f} |"
        )
    lines += [
        "",
        "Same series, windows and scoring for every row; seconds cover all windows (the three",
        "statsforecast models are fitted in one call, each row shows that call's time).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/basketcast-bench-cj"))
    parser.add_argument("--top-products", type=int, default=500)
    parser.add_argument("--skip-build", action="store_true", help="reuse the home's warehouse")
    parser.add_argument("--models", nargs="*", help="only these of our models")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--grain", choices=["day", "week"], default="day")
    parser.add_argument("--torch-stride", type=int, default=TorchBudget.origin_stride)
    parser.add_argument("--torch-epochs", type=int, default=TorchBudget.epochs)
    parser.add_argument("--torch-max-seconds", type=float, default=TorchBudget.max_seconds)
    args = parser.parse_args()
    budget = TorchBudget(args.torch_stride, args.torch_epochs, args.torch_max_seconds, args.threads)
    quiet_environment()

    paths = Paths(args.home.resolve())
    started = time.perf_counter()
    prepare(paths, args.top_products, args.skip_build)
    data = load_demand_data(paths, args.grain)
    cutoffs = backtest_cutoffs(data, windows(data))
    print(f"{data.n_items} items, as of {data.as_of}, cutoffs {[str(c) for c in cutoffs]}")

    results: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name, factory in our_models(args.threads, budget, args.grain).items():
        if args.models and name not in args.models:
            continue
        t = time.perf_counter()
        forecasts = run_ours(name, factory, data)
        saved = paths.home / f"bench_forecasts_{args.grain}_{name}.parquet"
        forecasts.to_parquet(saved, index=False)
        results[name] = summarize(forecasts, data.history)
        seconds[name] = time.perf_counter() - t
        print(f"  {name}: {results[name]} ({seconds[name]:.0f} s)")
    if not args.no_peers and args.grain == "day":
        for name, scored in run_peers(data, cutoffs, args.threads, seconds).items():
            results[name] = summarize(scored, data.history)
            print(f"  {name}: {results[name]}")

    meta = (
        f"{dt.date.today()}, {platform.node()} ({os.cpu_count()} cores, shared with other "
        f"work), {data.n_items} items, {WINDOWS}x{windows(data).horizon}-{args.grain} "
        "windows, cutoffs "
        f"{', '.join(str(c) for c in cutoffs)}, {time.perf_counter() - started:.0f} s in all"
    )
    text = report(results, seconds, meta)
    print(text)
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
