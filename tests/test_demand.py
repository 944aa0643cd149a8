"""Item demand models, backtest and registry on a small synthetic warehouse with known structure.

The warehouse here holds only what the demand job reads: `marts.fct_item_daily_demand` (typed as
in docs/contracts.md) and, optionally, `staging.stg_shop__promotions`. Demand is Poisson around
a weekly pattern with strong promotion lift, a few stock-outs (censored to zero sales), one item
whose sales stopped and one launched late.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from ml_jobs.config import Paths
from ml_jobs.demand import DemandJobConfig, DemandJobFailed, run_demand_forecast
from ml_jobs.demand.backtest import BacktestConfig, item_segments
from ml_jobs.demand.data import clean_history, clean_promotions, known_future, load_demand_data
from ml_jobs.demand.metrics import score, seasonal_naive_scale
from ml_jobs.demand.seasonal_naive import SeasonalNaive
from ml_jobs.demand.xgb import XGBoostQuantile, XGBoostQuantileParams
from ml_jobs.registry import (
    RunRecord,
    finish_run,
    promote_if_better,
    start_run,
    write_backtest_metrics,
)
from ml_jobs.warehouse import connect, ensure_prediction_schema, write_predictions

FCT_DDL = """CREATE TABLE marts.fct_item_daily_demand (
    item_id BIGINT, demand_date DATE, category_id BIGINT, units_sold BIGINT, order_count BIGINT,
    revenue DOUBLE, views BIGINT, carts BIGINT, favorites BIGINT, category_searches BIGINT,
    price DOUBLE, list_price DOUBLE, discount_pct DOUBLE, is_promo BOOLEAN, on_hand INTEGER,
    is_stockout BOOLEAN)"""
PROMO_DDL = """CREATE TABLE staging.stg_shop__promotions (
    item_id BIGINT, start_date DATE, end_date DATE, discount_pct DOUBLE)"""
QUIET = Console(quiet=True)
# One thread: on a shared two-core runner, two OpenMP threads stall each other under load.
FAST_XGB = XGBoostQuantileParams(num_boost_round=80, nthread=1)
# The baselines only: the torch model has its own module (test_demand_torch.py).
BASELINES = ("seasonal_naive", "xgboost_quantile")


def synthetic_demand(
    n_items: int = 20,
    n_days: int = 200,
    seed: int = 0,
    promo_lift: float = 5.0,
    stockout_runs: int = 2,
    future_days: int = 28,
    start: str = "2024-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fct_item_daily_demand rows, planned promotions incl. `future_days` past the data)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, periods=n_days + future_days, freq="D")
    item_ids = np.arange(1001, 1001 + n_items)
    base = rng.lognormal(0.8, 1.0, n_items)
    phase = rng.uniform(0, 2 * np.pi, n_items)
    list_price = rng.uniform(5, 60, n_items).round(2)
    discount = np.zeros((n_items, len(days)))
    promotions = []
    for i in range(n_items):
        day = int(rng.integers(0, 30))
        while day < len(days):
            length, pct = int(rng.integers(5, 11)), float(rng.choice([20.0, 30.0, 40.0]))
            discount[i, day : day + length] = pct
            end = days[min(day + length, len(days)) - 1]
            promotions.append((item_ids[i], days[day].date(), end.date(), pct))
            day += length + int(rng.integers(20, 40))
    weekly = 1 + 0.5 * np.sin(2 * np.pi * days.dayofweek.to_numpy()[None, :] / 7 + phase[:, None])
    expected = base[:, None] * weekly * (1 + promo_lift * discount / 100)
    expected[0, n_days - 60 :] = 0.0  # item 1001 stopped selling two months ago
    units = rng.poisson(expected)
    stockout = np.zeros(units.shape, dtype=bool)
    for i in range(1, n_items):
        for _ in range(stockout_runs):
            first = int(rng.integers(20, n_days - 5))
            stockout[i, first : first + int(rng.integers(2, 6))] = True
    units = np.where(stockout, 0, units)
    paid = list_price[:, None] * (1 - discount / 100)
    n = n_days
    frame = pd.DataFrame(
        {
            "item_id": np.repeat(item_ids, n),
            "demand_date": np.tile(days[:n].values, n_items),
            "category_id": np.repeat(10 + np.arange(n_items) % 4, n),
            "units_sold": units[:, :n].reshape(-1),
            "order_count": units[:, :n].reshape(-1),
            "revenue": (units * paid)[:, :n].reshape(-1),
            "views": rng.poisson(expected * 8 + 3)[:, :n].reshape(-1),
            "carts": rng.poisson(expected * 2)[:, :n].reshape(-1),
            "favorites": 0,
            "category_searches": rng.poisson(5.0, (n_items, n)).reshape(-1),
            "price": paid[:, :n].reshape(-1),
            "list_price": np.repeat(list_price, n),
            "discount_pct": discount[:, :n].reshape(-1),
            "is_promo": (discount[:, :n] > 0).reshape(-1),
            "on_hand": np.where(stockout, 0, 50)[:, :n].reshape(-1),
            "is_stockout": stockout[:, :n].reshape(-1),
        }
    )
    late = (frame["item_id"] == item_ids[-1]) & (frame["demand_date"] < days[n_days - 50])
    frame = frame[~late].reset_index(drop=True)  # the last item launched 50 days ago
    columns = ["item_id", "start_date", "end_date", "discount_pct"]
    return frame, pd.DataFrame(promotions, columns=columns)


def build_warehouse(home: Path, frame: pd.DataFrame, promotions: pd.DataFrame | None) -> Paths:
    """A warehouse holding the demand mart (and staged promotions), as dbt would leave it."""
    paths = Paths(home)
    home.mkdir(parents=True, exist_ok=True)
    with connect(paths.warehouse) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(FCT_DDL)
        con.register("fct", frame)
        con.execute("INSERT INTO marts.fct_item_daily_demand SELECT * FROM fct")
        if promotions is not None:
            con.execute("CREATE SCHEMA staging")
            con.execute(PROMO_DDL)
            con.register("promos", promotions)
            con.execute("INSERT INTO staging.stg_shop__promotions SELECT * FROM promos")
    return paths


def read(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demand job on 20 items × 200 days with staged promotions; tables snapshotted."""
    frame, promotions = synthetic_demand()
    paths = build_warehouse(tmp_path_factory.mktemp("demand") / "home", frame, promotions)
    config = DemandJobConfig(nthread=1, xgboost=FAST_XGB, models=BASELINES, write_report=False)
    result = run_demand_forecast(paths, config, QUIET)
    return {
        "paths": paths,
        "config": config,
        "frame": frame,
        "promotions": promotions,
        "result": result,
        "runs": read(paths, "SELECT * FROM ml.model_runs"),
        "forecast": read(paths, "SELECT * FROM predictions.item_demand_forecast"),
        "backtest": read(paths, "SELECT * FROM ml.backtest_metrics"),
    }


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_match_hand_computed_values():
    # The last row is a stock-out: its actual is censored (NaN) and must not count at all.
    frame = pd.DataFrame(
        {
            "actual": [0.0, 2.0, 4.0, np.nan],
            "p10": [0.0, 1.0, 1.0, 0.0],
            "p50": [1.0, 2.0, 2.0, 9.0],
            "p90": [1.0, 3.0, 3.0, 20.0],
            "scale": [2.0, 2.0, 1.0, 1.0],
        }
    )
    got = score(frame)
    assert got["wape"] == pytest.approx(3 / 6)
    assert got["bias"] == pytest.approx((5 - 6) / 6)
    assert got["pinball_p10"] == pytest.approx((0 + 0.1 + 0.3) / 3)
    assert got["pinball_p50"] == pytest.approx((0.5 + 0 + 1.0) / 3)
    assert got["pinball_p90"] == pytest.approx((0.1 + 0.1 + 0.9) / 3)
    assert got["pinball_mean"] == pytest.approx(1 / 3)
    assert got["coverage_p10_p90"] == pytest.approx(2 / 3)
    assert got["mase"] == pytest.approx((1 / 2 + 0 / 2 + 2 / 1) / 3)
    assert got["n_obs"] == 3


def test_mase_scale_is_in_sample_weekly_naive_mae_skipping_stockouts():
    days = pd.date_range("2024-01-01", periods=15, freq="D")
    units = [1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9, 0]  # week 2 = week 1 + 2
    history = clean_history(
        pd.DataFrame(
            {
                "item_id": 1,
                "demand_date": days,
                "category_id": 1,
                "units_sold": units,
                "views": 0,
                "carts": 0,
                "category_searches": 0,
                "price": 1.0,
                "list_price": 1.0,
                "discount_pct": 0.0,
                "is_promo": False,
                "is_stockout": [False] * 14 + [True],  # a zero that would add |0 - 3| = 3
            }
        )
    )
    assert seasonal_naive_scale(history).loc[1] == pytest.approx(2.0)


# --- models ------------------------------------------------------------------------------------


def flat_history(n_items: int, n_days: int, mean: float, stockout_share: float, seed: int):
    """Poisson(mean) demand with no pattern; a share of days are stock-outs selling zero."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n_days, freq="D")
    stockout = rng.random((n_items, n_days)) < stockout_share
    units = np.where(stockout, 0, rng.poisson(mean, (n_items, n_days)))
    return clean_history(
        pd.DataFrame(
            {
                "item_id": np.repeat(np.arange(n_items), n_days),
                "demand_date": np.tile(days.values, n_items),
                "category_id": 1,
                "units_sold": units.reshape(-1),
                "views": 30,
                "carts": 10,
                "category_searches": 5,
                "price": 10.0,
                "list_price": 10.0,
                "discount_pct": 0.0,
                "is_promo": False,
                "is_stockout": stockout.reshape(-1),
            }
        )
    )


@pytest.mark.parametrize(
    "model", [SeasonalNaive(), XGBoostQuantile(FAST_XGB)], ids=lambda m: m.name
)
def test_stockout_days_are_censored_demand_not_zero(model):
    """Demand is Poisson(10) but 40% of days sold zero because the shelf was empty."""
    censored = flat_history(n_items=10, n_days=150, mean=10.0, stockout_share=0.4, seed=1)
    as_of = censored["demand_date"].max().date()
    forecast = model.fit(censored).predict(censored, as_of, 28)
    assert forecast["p50"].mean() == pytest.approx(10.0, abs=1.5)
    assert forecast["p10"].mean() > 4.0

    # The same data with the stock-out flags dropped (zeros taken at face value) forecasts far
    # lower: this is what the censoring protects against.
    as_zeros = censored.assign(is_stockout=False)
    naive = type(model)(model.config).fit(as_zeros).predict(as_zeros, as_of, 28)
    assert naive["p50"].mean() < 7.5
    assert naive["p10"].mean() < 1.0


def test_seasonal_naive_repeats_the_weekly_pattern():
    history = flat_history(n_items=1, n_days=56, mean=1.0, stockout_share=0.0, seed=0)
    pattern = np.array([1, 2, 3, 4, 5, 6, 7], dtype=float)
    history["units_sold"] = np.tile(pattern, 8)
    as_of = history["demand_date"].max().date()
    forecast = SeasonalNaive().predict(history, as_of, 14)
    # The day after as_of continues the cycle: as_of is the 7th day of a week (value 7).
    assert forecast["p50"].tolist() == pytest.approx(np.tile(pattern, 2).tolist())
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()


def test_known_future_takes_planned_promotions_and_last_list_price():
    frame, promotions = synthetic_demand(n_items=3, n_days=60, seed=3)
    history, planned = clean_history(frame), clean_promotions(promotions)
    as_of = history["demand_date"].max().date()
    future = known_future(history, as_of, 28, planned)
    assert len(future) == 3 * 28
    assert (
        future["target_date"] == pd.Timestamp(as_of) + pd.to_timedelta(future["horizon"], "D")
    ).all()
    last_price = history.groupby("item_id")["list_price"].last()
    assert (future["list_price"].to_numpy() == future["item_id"].map(last_price).to_numpy()).all()
    for row in planned.itertuples():
        days = future[
            (future["item_id"] == row.item_id)
            & future["target_date"].between(row.start_date, row.end_date)
        ]
        assert (days["discount_pct"] == row.discount_pct).all()
    on_promo = sum(
        (
            (future["item_id"] == r.item_id)
            & future["target_date"].between(r.start_date, r.end_date)
        ).sum()
        for r in planned.itertuples()
    )
    assert on_promo > 0 and (future["discount_pct"] > 0).sum() == on_promo
    assert (known_future(history, as_of, 28, None)["discount_pct"] == 0).all()


def test_segments_follow_zero_share():
    history = flat_history(n_items=3, n_days=90, mean=5.0, stockout_share=0.0, seed=0)
    units = history["units_sold"].to_numpy().reshape(3, 90)
    units[1, ::2] = 0  # 50% zeros
    units[2, :80] = 0  # 89% zeros
    history["units_sold"] = units.reshape(-1).astype(float)
    segments = item_segments(history, BacktestConfig())
    assert segments.tolist() == ["fast", "slow", "intermittent"]


# --- the job -----------------------------------------------------------------------------------


def test_forecast_covers_every_item_and_horizon(demo):
    forecast, frame, result = demo["forecast"], demo["frame"], demo["result"]
    n_items = frame["item_id"].nunique()
    as_of = frame["demand_date"].max()
    assert result.as_of_date == as_of.date()
    for run in result.runs:
        rows = forecast[forecast["run_id"] == run.run_id]
        assert len(rows) == n_items * 28 == run.rows_written
        assert set(rows["item_id"]) == set(frame["item_id"])  # stopped and late items included
        assert sorted(rows["horizon"].unique()) == list(range(1, 29))
        assert (rows.groupby("item_id")["horizon"].nunique() == 28).all()
        target = pd.to_datetime(rows["as_of_date"]) + pd.to_timedelta(rows["horizon"], "D")
        assert (pd.to_datetime(rows["target_date"]) == target).all()
        assert (pd.to_datetime(rows["as_of_date"]) == as_of).all()
        assert (rows["p10"] >= 0).all()
        assert (rows["p10"] <= rows["p50"]).all() and (rows["p50"] <= rows["p90"]).all()
        assert (rows["model_name"] == run.model_name).all()


def test_registry_records_one_succeeded_run_per_model_and_one_champion(demo):
    runs, result = demo["runs"], demo["result"]
    assert sorted(runs["model_name"]) == ["seasonal_naive", "xgboost_quantile"]
    assert (runs["status"] == "succeeded").all()
    assert runs["is_champion"].sum() == 1
    assert result.champion_run_id == runs.loc[runs["is_champion"], "run_id"].item()
    assert dict(zip(runs["model_name"], runs["model_kind"], strict=True)) == {
        "seasonal_naive": "baseline",
        "xgboost_quantile": "xgboost",
    }
    as_of = demo["frame"]["demand_date"].max().date()
    assert (pd.to_datetime(runs["train_end"]).dt.date == as_of).all()
    for row in runs.itertuples():
        metrics = json.loads(row.metrics)
        assert metrics["pinball_mean"] > 0
        assert json.loads(row.params)
        assert row.git_sha is None or len(row.git_sha) == 40
        artifacts = Path(row.artifact_uri)
        assert (artifacts / "config.json").exists() and (artifacts / "model.json").exists()
    xgb_dir = Path(runs.loc[runs["model_name"] == "xgboost_quantile", "artifact_uri"].item())
    reloaded = XGBoostQuantile.load(xgb_dir)
    history = load_demand_data(demo["paths"]).history
    again = reloaded.predict(history, as_of, 28, known_future(history, as_of, 28, None))
    assert len(again) == len(demo["frame"]["item_id"].unique()) * 28


def test_backtest_metrics_cover_cutoffs_segments_and_horizons(demo):
    backtest, as_of = demo["backtest"], demo["result"].as_of_date
    cutoffs = {as_of - dt.timedelta(days=28), as_of - dt.timedelta(days=56)}
    for _, rows in backtest.groupby("run_id"):
        assert set(pd.to_datetime(rows["cutoff"]).dt.date) == cutoffs
        overall = rows[rows["horizon"].isna()]
        assert {"all", "fast", "slow"} <= set(overall["segment"])
        assert set(overall["metric"]) >= {"wape", "mase", "pinball_mean", "coverage_p10_p90"}
        per_horizon = rows[rows["horizon"].notna()]
        assert set(per_horizon["horizon"].astype(int)) == set(range(1, 29))
        assert set(per_horizon["segment"]) == {"all"}

    # Scored only on observed demand: stock-out days after the cutoff are left out.
    frame, cutoff = demo["frame"], as_of - dt.timedelta(days=28)
    after = frame[frame["demand_date"] > pd.Timestamp(cutoff)]
    assert after["is_stockout"].any()
    n_obs = backtest[
        (backtest["metric"] == "n_obs")
        & (backtest["segment"] == "all")
        & backtest["horizon"].isna()
        & (pd.to_datetime(backtest["cutoff"]).dt.date == cutoff)
    ]["value"]
    assert (n_obs == (~after["is_stockout"]).sum()).all() and len(n_obs) == 2


def test_xgboost_beats_seasonal_naive_when_promotions_drive_demand(demo):
    backtest = demo["backtest"]
    overall = backtest[(backtest["segment"] == "all") & backtest["horizon"].isna()]
    pinball = overall[overall["metric"] == "pinball_mean"].pivot(
        index="cutoff", columns="model_name", values="value"
    )
    assert (pinball["xgboost_quantile"] < 0.85 * pinball["seasonal_naive"]).all()
    coverage = overall[overall["metric"] == "coverage_p10_p90"].groupby("model_name")["value"]
    assert coverage.mean().between(0.6, 0.95).all()
    champion = demo["runs"].loc[demo["runs"]["is_champion"], "model_name"].item()
    assert champion == "xgboost_quantile"


def test_planned_promotions_lift_the_xgboost_forecast(demo):
    forecast, promotions = demo["forecast"], demo["promotions"]
    xgb_rows = forecast[forecast["model_name"] == "xgboost_quantile"].copy()
    xgb_rows["target_date"] = pd.to_datetime(xgb_rows["target_date"])
    on_promo = np.zeros(len(xgb_rows), dtype=bool)
    for row in promotions.itertuples():
        on_promo |= (xgb_rows["item_id"] == row.item_id).to_numpy() & xgb_rows[
            "target_date"
        ].between(pd.Timestamp(row.start_date), pd.Timestamp(row.end_date)).to_numpy()
    xgb_rows["on_promo"] = on_promo
    by_item = xgb_rows.groupby(["item_id", "on_promo"])["p50"].mean().unstack().dropna()
    assert len(by_item) >= 5
    assert (by_item[True] / by_item[False].clip(lower=0.1)).median() > 1.5


def test_second_run_keeps_one_champion_and_latest_serves_its_newest_run(demo):
    paths, first = demo["paths"], demo["result"]
    second = run_demand_forecast(paths, demo["config"], QUIET)
    runs = read(paths, "SELECT * FROM ml.model_runs")
    assert len(runs) == 4 and (runs["status"] == "succeeded").all()
    assert runs["is_champion"].sum() == 1
    champion = runs.loc[runs["is_champion"]].iloc[0]
    newest = runs[runs["model_name"] == champion["model_name"]].sort_values("trained_at").iloc[-1]
    assert champion["run_id"] == newest["run_id"] == second.champion_run_id
    assert champion["run_id"] not in {run.run_id for run in first.runs}

    latest = read(paths, "SELECT * FROM predictions.item_demand_forecast_latest")
    assert set(latest["run_id"]) == {champion["run_id"]}
    assert len(latest) == demo["frame"]["item_id"].nunique() * 28
    total = read(paths, "SELECT count(*) AS n FROM predictions.item_demand_forecast")["n"].item()
    assert total == 4 * len(latest)


def test_job_runs_without_staged_promotions(tmp_path):
    frame, _ = synthetic_demand(n_items=8, n_days=120, seed=5)
    frame.loc[frame.index % 7 == 0, ["views", "list_price", "on_hand"]] = None  # gaps cope
    paths = build_warehouse(tmp_path / "home", frame, promotions=None)
    result = run_demand_forecast(
        paths,
        DemandJobConfig(nthread=1, xgboost=FAST_XGB, models=BASELINES, write_report=False),
        QUIET,
    )
    assert [run.status for run in result.runs] == ["succeeded", "succeeded"]
    latest = read(paths, "SELECT * FROM predictions.item_demand_forecast_latest")
    assert len(latest) == 8 * 28 and (latest["p10"] <= latest["p90"]).all()


def test_failed_model_is_recorded_and_the_others_still_serve(tmp_path, monkeypatch):
    frame, promotions = synthetic_demand(n_items=6, n_days=100, seed=7)
    paths = build_warehouse(tmp_path / "home", frame, promotions)

    def broken_fit(self, history):
        raise RuntimeError("boom")

    monkeypatch.setattr(XGBoostQuantile, "fit", broken_fit)
    with pytest.raises(DemandJobFailed, match="boom") as failure:
        run_demand_forecast(
            paths,
            DemandJobConfig(nthread=1, xgboost=FAST_XGB, models=BASELINES, write_report=False),
            QUIET,
        )
    runs = read(paths, "SELECT * FROM ml.model_runs ORDER BY model_name")
    assert runs["status"].tolist() == ["succeeded", "failed"]
    assert "boom" in json.loads(runs["metrics"].iloc[1])["error"]
    assert failure.value.result.champion_run_id == runs["run_id"].iloc[0]
    xgb_rows = read(
        paths,
        "SELECT count(*) AS n FROM predictions.item_demand_forecast "
        "WHERE model_name = 'xgboost_quantile'",
    )
    assert xgb_rows["n"].item() == 0


# --- registry and write-back ---------------------------------------------------------------------


def register(con, paths: Paths, run_id: str, model: str, scores: dict[dt.date, float]) -> None:
    """A succeeded run with forecasts and backtest pinball scores per cutoff."""
    start_run(con, RunRecord(run_id, model, "baseline", "0", params={"k": 1}))
    metrics = pd.DataFrame(
        {
            "model_name": model,
            "cutoff": list(scores),
            "horizon": None,
            "segment": "all",
            "metric": "pinball_mean",
            "value": list(scores.values()),
        }
    )
    write_backtest_metrics(con, run_id, metrics)
    finish_run(con, run_id, "succeeded", {"pinball_mean": float(np.mean(list(scores.values())))})
    forecast = pd.DataFrame(
        {
            "run_id": run_id,
            "model_name": model,
            "model_version": "0",
            "as_of_date": pd.Timestamp("2024-03-01"),
            "predicted_at": pd.Timestamp.now(tz="UTC"),
            "item_id": [1, 2],
            "target_date": pd.Timestamp("2024-03-02"),
            "horizon": 1,
            "p10": 0.0,
            "p50": 1.0,
            "p90": 2.0,
        }
    )
    con.register("f", forecast)
    con.execute("INSERT INTO predictions.item_demand_forecast BY NAME SELECT * FROM f")
    con.unregister("f")


def test_champion_challenger_rules(tmp_path):
    paths = Paths(tmp_path)
    c1, c2, c3 = dt.date(2024, 1, 1), dt.date(2024, 1, 29), dt.date(2024, 2, 26)
    with connect(paths.warehouse) as con:
        ensure_prediction_schema(con)
        register(con, paths, "a1", "model_a", {c1: 1.0, c2: 1.0})
        first = promote_if_better(con, "a1")
        assert first.promoted and first.reason.startswith("first champion")

        register(con, paths, "b1", "model_b", {c1: 1.2, c2: 0.9})  # mean 1.05: worse
        assert not promote_if_better(con, "b1").promoted
        register(con, paths, "b2", "model_b", {c1: 1.0, c2: 1.0})  # a tie keeps the champion
        assert not promote_if_better(con, "b2").promoted
        register(con, paths, "b3", "model_b", {c3: 0.1})  # no shared cutoff: not comparable
        kept = promote_if_better(con, "b3")
        assert not kept.promoted and kept.champion_run_id == "a1"

        register(con, paths, "b4", "model_b", {c1: 0.8, c2: 0.9})
        won = promote_if_better(con, "b4")
        assert won.promoted and won.challenger_score == pytest.approx(0.85)
        assert won.champion_score == pytest.approx(1.0)

        register(con, paths, "b5", "model_b", {c3: 5.0})  # a retrain of the champion model
        assert promote_if_better(con, "b5").promoted

        start_run(con, RunRecord("c1", "model_c", "torch", "0"))
        with pytest.raises(ValueError, match="has not succeeded"):
            promote_if_better(con, "c1")
        champions = con.execute("SELECT run_id FROM ml.model_runs WHERE is_champion").fetchall()
        assert champions == [("b5",)]
        latest = con.execute(
            "SELECT DISTINCT run_id FROM predictions.item_demand_forecast_latest"
        ).fetchall()
        assert latest == [("b5",)]


def test_rewriting_a_run_replaces_it(tmp_path, demo):
    paths = Paths(tmp_path)
    run = demo["forecast"][demo["forecast"]["run_id"] == demo["result"].runs[0].run_id]
    assert write_predictions(paths.warehouse, "item_demand_forecast", run) == len(run)
    changed = run.assign(p90=run["p90"] + 1.0)
    write_predictions(paths.warehouse, "item_demand_forecast", changed)
    stored = read(
        paths, "SELECT count(*) AS n, sum(p90) AS s FROM predictions.item_demand_forecast"
    )
    assert stored["n"].item() == len(run)
    assert stored["s"].item() == pytest.approx(changed["p90"].sum())

    metrics = demo["result"].backtest
    metrics = metrics[metrics["run_id"] == demo["result"].runs[0].run_id]
    with connect(paths.warehouse) as con:
        ensure_prediction_schema(con)
        write_backtest_metrics(con, "r1", metrics)
        write_backtest_metrics(con, "r1", metrics)
        count = con.execute("SELECT count(*) FROM ml.backtest_metrics").fetchone()[0]
    assert count == len(metrics)


def test_config_is_plain_data():
    config = DemandJobConfig()
    assert config.horizon == 28 and config.backtest_cutoffs == 2 and config.nthread == 2
    assert dataclasses.asdict(config)["xgboost"]["nthread"] == 2
    assert config.models == ("seasonal_naive", "xgboost_quantile", "torch_quantile")
    assert dataclasses.asdict(config)["torch"]["train"]["epochs"] > 0
    with pytest.raises(ValueError, match="unknown demand model"):
        run_demand_forecast(Paths(Path("/nonexistent")), DemandJobConfig(models=("prophet",)))
