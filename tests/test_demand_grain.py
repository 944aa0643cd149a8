"""Weekly time grain: aggregation, seasonal naive, planned promotions, the job end to end.

Real parts only: the synthetic shop of test_demand.py in a real DuckDB warehouse, and a slice
of Complete Journey ingested and built by dbt (as in test_ingest.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_demand import QUIET, build_warehouse, read, synthetic_demand

from ml_jobs import dbt_runner
from ml_jobs.config import Paths
from ml_jobs.demand import DemandJobConfig, run_demand_forecast
from ml_jobs.demand.data import clean_history, infer_step, known_future, load_demand_data, to_panel
from ml_jobs.demand.grain import GRAIN_ENV, weekly_history
from ml_jobs.demand.seasonal_naive import SeasonalNaive
from ml_jobs.demand.torch_forecaster import TorchQuantile, TorchQuantileParams
from ml_jobs.demand.torch_train import TrainConfig
from ml_jobs.demand.xgb import XGBoostQuantileParams
from ml_jobs.ingest.completejourney import CompleteJourneyConfig, ingest_completejourney

WEEKLY_XGB = XGBoostQuantileParams(num_boost_round=40, nthread=1, origin_stride=1, row_fraction=1.0)


def daily_rows(units: list[float], start: str = "2024-01-03", **columns) -> pd.DataFrame:
    """One item's daily demand frame (the DEMAND_COLUMNS, typed by clean_history)."""
    n = len(units)
    frame = pd.DataFrame(
        {
            "item_id": 7,
            "demand_date": pd.date_range(start, periods=n, freq="D"),
            "category_id": 3,
            "units_sold": units,
            "views": 1,
            "carts": 0,
            "category_searches": 2,
            "price": 10.0,
            "list_price": 12.0,
            "discount_pct": 0.0,
            "is_promo": False,
            "is_stockout": False,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return clean_history(frame)


def test_weekly_history_sums_complete_weeks_and_censors_mostly_out_of_stock_weeks():
    # 2024-01-03 is a Wednesday: the first Monday is 01-08; 26 days end on Sunday 01-28.
    units = [9.0] * 5 + [1.0] * 7 + [2.0] * 7 + [0.0] * 7
    stockout = [False] * 19 + [True] * 4 + [False] * 3  # 4 of the last week's 7 days
    discount = [0.0] * 5 + [0.0] * 5 + [30.0] * 2 + [0.0] * 14
    frame = daily_rows(
        units,
        is_stockout=stockout,
        discount_pct=discount,
        is_promo=[d > 0 for d in discount],
        price=np.arange(26, dtype=float),
    )
    weekly = weekly_history(frame)
    assert list(weekly.columns) == list(frame.columns)
    assert weekly["demand_date"].dt.date.tolist() == [
        dt.date(2024, 1, 8),
        dt.date(2024, 1, 15),
        dt.date(2024, 1, 22),
    ]  # the partial first week (Wed-Sun) is dropped: it would look like a slump
    assert weekly["units_sold"].tolist() == [7.0, 14.0, 0.0]
    assert weekly["is_promo"].tolist() == [True, False, False]
    assert weekly["discount_pct"].round(6).tolist() == [round(60 / 7, 6), 0.0, 0.0]
    assert weekly["price"].tolist() == [8.0, 15.0, 22.0]  # mean of the week's days
    assert weekly["is_stockout"].tolist() == [False, False, True]
    assert weekly["views"].tolist() == [7.0, 7.0, 7.0]
    assert infer_step(weekly["demand_date"]) == 7 and infer_step(frame["demand_date"]) == 1


def test_weekly_history_without_a_complete_week_names_the_fix():
    with pytest.raises(ValueError, match="no complete Monday-to-Sunday week: use the daily"):
        weekly_history(daily_rows([1.0] * 6))


def test_unknown_grain_is_refused_naming_the_setting(monkeypatch):
    with pytest.raises(ValueError, match="unknown demand grain 'month'.*--grain"):
        DemandJobConfig(grain="month")
    monkeypatch.setenv(GRAIN_ENV, "week")
    config = DemandJobConfig()
    assert (config.grain, config.horizon, config.step_days) == ("week", 8, 7)
    assert config.torch.window == 26 and config.xgboost.origin_stride == 1
    assert config.registry_name("xgboost_quantile") == "xgboost_quantile_weekly"
    monkeypatch.setenv(GRAIN_ENV, "fortnight")
    with pytest.raises(ValueError, match=GRAIN_ENV):
        DemandJobConfig()


def weekly_frame(per_day: np.ndarray, start: str = "2022-01-03") -> pd.DataFrame:
    """Weekly rows (Mondays) of one item selling `per_day[w]` units each day of week w."""
    return weekly_history(daily_rows(list(np.repeat(per_day, 7)), start=start))


def test_weekly_seasonal_naive_uses_last_weeks_then_last_years():
    short = weekly_frame(np.array([10.0] * 20 + [2.0, 4.0, 6.0, 8.0]))  # x 7 a week
    panel = to_panel(short)
    assert (panel.step_days, panel.season, panel.n_days) == (7, 1, 24)
    as_of = short["demand_date"].max().date()
    forecast = SeasonalNaive().predict(short, as_of, horizon=3)
    assert forecast["p50"].tolist() == [35.0, 35.0, 35.0]  # mean of the last four weeks
    assert forecast["target_date"].tolist() == [
        pd.Timestamp(as_of) + pd.Timedelta(weeks=h) for h in (1, 2, 3)
    ]
    # Two years of a yearly cycle: the same week of the last years, not last week.
    weeks = np.arange(110)
    long = weekly_frame(np.round(5.0 + 4.0 * np.sin(2 * np.pi * weeks / 52)))
    assert to_panel(long).season == 52
    as_of = long["demand_date"].max().date()
    p50 = SeasonalNaive().predict(long, as_of, horizon=2)["p50"].to_numpy()
    units = long["units_sold"].to_numpy()
    expected = [np.mean(units[[110 - 52 + h - 1, 110 - 104 + h - 1]]) for h in (1, 2)]
    np.testing.assert_allclose(p50, expected)


def test_weekly_known_future_averages_planned_promotions_over_each_week():
    history = weekly_frame(np.full(10, 1.0))
    as_of = history["demand_date"].max().date()  # a Monday
    first = pd.Timestamp(as_of) + pd.Timedelta(weeks=1)
    promotions = pd.DataFrame(
        {
            "item_id": [7],
            "start_date": [first + pd.Timedelta(days=5)],  # Sat-Sun of week 1, all of week 2
            "end_date": [first + pd.Timedelta(days=13)],
            "discount_pct": [35.0],
        }
    )
    future = known_future(history, as_of, 3, promotions)
    assert future["target_date"].tolist() == [first + pd.Timedelta(weeks=k) for k in range(3)]
    assert future["discount_pct"].tolist() == [10.0, 35.0, 0.0]
    assert future["list_price"].tolist() == [12.0] * 3


def _weekly_config(**overrides) -> DemandJobConfig:
    settings = dict(
        grain="week",
        horizon=4,
        nthread=1,
        models=("seasonal_naive", "xgboost_quantile"),
        xgboost=WEEKLY_XGB,
        write_report=False,
    )
    return DemandJobConfig(**{**settings, **overrides})


def test_weekly_job_writes_week_rows_beside_the_daily_champion(tmp_path):
    frame, promotions = synthetic_demand(n_items=8, n_days=210, seed=3)
    paths = build_warehouse(tmp_path / "home", frame, promotions)
    daily = DemandJobConfig(models=("seasonal_naive",), nthread=1, write_report=False)
    daily_result = run_demand_forecast(paths, daily, QUIET)
    weekly_result = run_demand_forecast(paths, _weekly_config(), QUIET)

    last_sunday = dt.date(2024, 7, 28)  # 2024-01-01 + 209 days is Sunday 07-28
    assert weekly_result.as_of_date == last_sunday
    assert [r.model_name for r in weekly_result.runs] == [
        "seasonal_naive_weekly",
        "xgboost_quantile_weekly",
    ]
    assert all(r.status == "succeeded" for r in weekly_result.runs)
    assert weekly_result.champion_run_id == daily_result.champion_run_id  # no contest
    for run in weekly_result.runs:  # two 4-week windows scored (item 1001 stops selling in
        # the older one, so WAPE is high there), censored weeks left out
        assert 0 < run.metrics["n_obs"] < 8 * 4 and 0.0 < run.metrics["wape"] < 2.0

    forecast = read(paths, "SELECT * FROM predictions.item_demand_forecast WHERE grain = 'week'")
    assert len(forecast) == 2 * 8 * 4
    assert set(forecast["horizon"]) == {1, 2, 3, 4}
    assert set(pd.to_datetime(forecast["target_date"]).dt.dayofweek) == {0}  # Mondays
    assert pd.to_datetime(forecast["target_date"]).min().date() == last_sunday + dt.timedelta(1)
    assert set(pd.to_datetime(forecast["as_of_date"]).dt.date) == {last_sunday}
    assert ((forecast["p10"] <= forecast["p50"]) & (forecast["p50"] <= forecast["p90"])).all()
    # Four weeks of the weekly forecast sell about what 28 days of the daily one do.
    latest = read(paths, "SELECT * FROM predictions.item_demand_forecast_latest")
    assert set(latest["grain"]) == {"day"} and len(latest) == 8 * 28
    week_total = forecast[forecast["model_name"] == "seasonal_naive_weekly"]["p50"].sum()
    assert 0.6 < week_total / latest["p50"].sum() < 1.6
    runs = read(paths, "SELECT model_name, params FROM ml.model_runs ORDER BY model_name")
    assert runs["model_name"].tolist() == [
        "seasonal_naive",
        "seasonal_naive_weekly",
        "xgboost_quantile_weekly",
    ]
    assert '"grain": "week"' in runs["params"].iloc[2]


def test_torch_model_trains_and_forecasts_on_weekly_history():
    frame, _ = synthetic_demand(n_items=6, n_days=210, seed=5)
    weekly = weekly_history(clean_history(frame))
    params = TorchQuantileParams(
        window=12,
        horizon=4,
        hidden=16,
        train=TrainConfig(epochs=2, min_origin=8, origin_stride=1, device="cpu"),
    )
    as_of = weekly["demand_date"].max().date()
    model = TorchQuantile(params).fit(weekly)
    forecast = model.predict(weekly, as_of, 4)
    assert len(forecast) == 6 * 4
    q = forecast[["p10", "p50", "p90"]]
    assert (q["p10"] >= 0).all() and (q["p10"] <= q["p50"]).all() and (q["p50"] <= q["p90"]).all()
    # Weekly units: a median far above one day's sales of these items (means 1-10 a day).
    assert forecast["p50"].mean() > 3 * frame["units_sold"].mean()


@pytest.fixture
def cj_slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """The Complete Journey slice of test_ingest.py, built up to the demand mart by dbt."""
    paths = Paths(tmp_path / "cj")
    monkeypatch.setenv("BASKETCAST_HOME", str(paths.home))
    config = CompleteJourneyConfig(
        top_products=30, households=100, start=dt.date(2017, 1, 1), end=dt.date(2017, 5, 31)
    )
    ingest_completejourney(paths, config)
    dbt_runner.run_dbt(["run", "--select", "+fct_item_daily_demand"], paths)
    return paths


def test_weekly_job_on_a_complete_journey_slice(cj_slice: Paths):
    daily_units = read(cj_slice, "SELECT sum(units_sold) AS n FROM marts.fct_item_daily_demand")
    result = run_demand_forecast(cj_slice, _weekly_config(), QUIET)
    assert [r.status for r in result.runs] == ["succeeded", "succeeded"]
    assert result.as_of_date == dt.date(2017, 5, 28)  # the last Sunday up to 05-31
    assert result.n_items == 30 and result.champion_run_id is None  # weekly never crowns
    forecast = read(cj_slice, "SELECT * FROM predictions.item_demand_forecast")
    assert len(forecast) == 2 * 30 * 4 and set(forecast["grain"]) == {"week"}
    assert pd.to_datetime(forecast["target_date"]).min().date() == dt.date(2017, 5, 29)
    for run in result.runs:
        assert 0.1 < run.metrics["wape"] < 1.5 and run.metrics["pinball_mean"] > 0
    # Every unit of the complete weeks 2017-01-02 .. 2017-05-28 is kept, none of the rest.
    kept = read(
        cj_slice,
        "SELECT sum(units_sold) AS n FROM marts.fct_item_daily_demand "
        "WHERE demand_date BETWEEN '2017-01-02' AND '2017-05-28'",
    )
    weekly = load_demand_data(cj_slice, "week").history
    assert weekly["units_sold"].sum() == kept["n"].iloc[0] < daily_units["n"].iloc[0]
    assert weekly["demand_date"].nunique() == 21 and weekly["item_id"].nunique() == 30
