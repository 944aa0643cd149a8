"""End to end: a tiny synthetic shop through the real Airflow DAG (`dag.test()`), real dbt on
DuckDB, real Feast (DuckDB offline store + SQLite online store) and the real models.

One DAG run is shared by every test in this module; each test checks one invariant of what the
run left in the warehouse and the online store.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from ml_jobs import pipeline
from ml_jobs.airflow_local import run_dag
from ml_jobs.config import Paths

pytestmark = pytest.mark.e2e

HORIZON = 28
TINY_SHOP = {"users": 150, "items": 16, "days": 150, "seed": 11}


@pytest.fixture(scope="module")
def shop(module_home: Paths) -> Paths:
    pipeline.generate(module_home, **TINY_SHOP)
    run_dag("basketcast_daily", module_home)
    return module_home


def query(paths: Paths, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_every_run_forecasts_every_item_for_every_horizon(shop: Paths) -> None:
    runs = query(
        shop,
        """select run_id, count(*) as n_rows, count(distinct item_id) as n_items,
                  min(horizon) as h_min, max(horizon) as h_max
           from predictions.item_demand_forecast group by run_id""",
    )
    n_items = query(shop, "select count(*) as n from marts.dim_items")["n"].item()
    assert n_items == TINY_SHOP["items"]
    assert len(runs) >= 2  # the seasonal-naive baseline and XGBoost
    assert (runs["n_rows"] == n_items * HORIZON).all()
    assert (runs["n_items"] == n_items).all()
    assert (runs["h_min"] == 1).all() and (runs["h_max"] == HORIZON).all()


def test_forecast_quantiles_are_ordered_and_non_negative(shop: Paths) -> None:
    bad = query(
        shop,
        """select count(*) as n from predictions.item_demand_forecast
           where not (0 <= p10 and p10 <= p50 and p50 <= p90)
              or target_date <> as_of_date + horizon""",
    )
    assert bad["n"].item() == 0


def test_latest_view_shows_one_champion_run(shop: Paths) -> None:
    runs = query(shop, "select * from ml.model_runs")
    assert set(runs["status"]) == {"succeeded"}
    assert runs["is_champion"].sum() == 1
    latest = query(shop, "select distinct run_id from predictions.item_demand_forecast_latest")
    champion = runs.loc[runs["is_champion"], "run_id"].item()
    assert latest["run_id"].tolist() == [champion]


def test_replenishment_plan_covers_every_item_with_non_negative_orders(shop: Paths) -> None:
    plan = query(shop, "select * from consumers.inventory_replenishment_plan")
    assert len(plan) == TINY_SHOP["items"]
    assert plan["item_id"].is_unique
    assert (plan["recommended_order_qty"] >= 0).all()
    assert (plan["reorder_point"] >= plan["safety_stock"]).all()
    assert plan["stockout_risk"].between(0, 1).all()


def test_online_features_equal_newest_offline_values(shop: Paths) -> None:
    from ml_jobs import features

    users = query(
        shop,
        f"""select user_id from read_parquet('{shop.exports}/user_features.parquet')
            group by user_id order by count(*) desc limit 3""",
    )["user_id"].tolist()
    online = features.online_features(shop, "user", users).set_index("user_id").sort_index()
    offline = features.latest_offline_values(shop, "user", users).set_index("user_id").sort_index()
    shared = [c for c in offline.columns if c in online.columns]
    assert len(shared) >= 8
    pd.testing.assert_frame_equal(
        online[shared].astype(float), offline[shared].astype(float), check_dtype=False
    )


def test_backtest_metrics_recorded_for_each_model(shop: Paths) -> None:
    metrics = query(
        shop,
        """select model_name, count(distinct cutoff) as cutoffs, count(distinct metric) as n
           from ml.backtest_metrics group by model_name""",
    )
    assert len(metrics) >= 2
    assert (metrics["cutoffs"] >= 2).all()
    assert (metrics["n"] >= 5).all()  # wape, mase, pinball per quantile, coverage, bias
