"""The consumer marts on a real DuckDB warehouse: ads audiences, marketing segments with their
history, unmet demand and the replenishment plan, built by dbt on prediction tables.

One small synthetic shop is built once for the module. Prediction runs are written through
`ml_jobs.warehouse.write_predictions` for two consecutive as-of dates, with a consumer build
after each, the way two daily runs leave the warehouse. Every test recomputes its expectation
from the raw Parquet or the marts with pandas, independently of the SQL; the hand-computed
cases live in the dbt unit tests, which the consumer build runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_jobs import dbt_runner
from ml_jobs.config import Paths
from ml_jobs.generate import ShopConfig, generate_shop
from ml_jobs.warehouse import connect, ensure_prediction_schema, write_predictions

SHOP = ShopConfig(users=150, items=12, days=70)
CAP = 20  # ads audience size cap: small, so it binds on this shop
EXCLUDE_DAYS = 14
SETTINGS = {"ads_audience_max_size": CAP, "ads_exclude_recent_buyers_days": EXCLUDE_DAYS}
RUNS = {
    "item_demand_forecast": "demand-run",
    "user_purchase_propensity": "propensity-run",
    "user_category_affinity": "affinity-run",
}
CONSUMER_TABLES = (
    "inventory_replenishment_plan",
    "ads_audiences",
    "marketing_segments",
    "marketing_segment_sizes",
    "unmet_demand",
)
SEGMENTS = {
    "prospects",
    "new",
    "champions",
    "at_risk",
    "loyal",
    "promising",
    "hibernating",
    "needs_attention",
}


# --- set-up ---------------------------------------------------------------------------------


def frame(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


def run_columns(product: str, as_of: date) -> dict[str, object]:
    return {
        "run_id": RUNS[product],
        "model_name": product,
        "model_version": "1",
        "as_of_date": as_of,
        "predicted_at": pd.Timestamp(datetime.combine(as_of, datetime.min.time(), UTC)),
    }


def user_predictions(paths: Paths, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Propensity and affinity for the users active in the 90 days up to `as_of`: random but
    shaped like the models' output (deciles rank p_purchase, scores sum to 1 per user, one
    category per user at 0)."""
    users = frame(
        paths,
        f"""select distinct user_id from marts.fct_user_daily_activity
            where activity_date between date '{as_of}' - 89 and date '{as_of}'
            order by user_id""",
    )["user_id"].to_numpy()
    categories = sorted(
        frame(paths, "select distinct category_id from marts.dim_items")["category_id"]
    )
    rng = np.random.default_rng(as_of.toordinal())
    p_purchase = rng.beta(2.0, 4.0, size=len(users))
    order = np.argsort(-p_purchase, kind="stable")
    decile = np.empty(len(users), dtype=np.int32)
    decile[order] = np.ceil(10 * np.arange(1, len(users) + 1) / len(users)).astype(np.int32)
    propensity = pd.DataFrame(
        {
            **run_columns("user_purchase_propensity", as_of),
            "user_id": users,
            "window_days": 7,
            "p_purchase": p_purchase,
            "expected_spend": np.round(rng.gamma(2.0, 25.0, size=len(users)), 2),
            "decile": decile,
        }
    )
    shares = rng.dirichlet(np.ones(len(categories)), size=len(users))
    shares[np.arange(len(users)), rng.integers(0, len(categories), size=len(users))] = 0.0
    shares /= shares.sum(axis=1, keepdims=True)
    affinity = pd.DataFrame(
        {
            "user_id": np.repeat(users, len(categories)),
            "category_id": np.tile(categories, len(users)),
            "score": shares.ravel(),
        }
    )
    affinity["rank"] = (
        affinity.groupby("user_id")["score"].rank(ascending=False, method="first").astype(int)
    )
    affinity = affinity.assign(**run_columns("user_category_affinity", as_of))
    return propensity, affinity


def forecast(paths: Paths, as_of: date) -> pd.DataFrame:
    items = frame(paths, "select item_id from marts.dim_items order by item_id")["item_id"]
    rows = [
        {
            **run_columns("item_demand_forecast", as_of),
            "item_id": item,
            "target_date": as_of + timedelta(days=h),
            "horizon": h,
            "p10": 0.5 * (1 + item % 3),
            "p50": 1.0 + item % 3,
            "p90": 2.0 * (1 + item % 3),
        }
        for item in items
        for h in range(1, 29)
    ]
    return pd.DataFrame(rows)


def publish(paths: Paths, as_of: date) -> None:
    """One day's predictions written back, then the consumer build (tests included)."""
    propensity, affinity = user_predictions(paths, as_of)
    write_predictions(paths.warehouse, "user_purchase_propensity", propensity)
    write_predictions(paths.warehouse, "user_category_affinity", affinity)
    write_predictions(paths.warehouse, "item_demand_forecast", forecast(paths, as_of))
    dbt_runner.run_dbt(["build", "--select", "tag:consumers"], paths, variables=SETTINGS)


@pytest.fixture(scope="module")
def shop(module_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    """The shop built, with consumers built for two consecutive as-of dates."""
    dbt_files = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(dbt_files / "target"))
        patch.setenv("DBT_LOG_PATH", str(dbt_files / "logs"))
        generate_shop(SHOP, module_home)
        dbt_runner.build_warehouse(module_home)
        last = frame(module_home, "select max(last_day) as d from intermediate.int_date_spine")
        newest = pd.Timestamp(last["d"].item()).date()
        with connect(module_home.warehouse) as con:
            ensure_prediction_schema(con)
            for product, run_id in RUNS.items():
                con.execute(
                    """insert into ml.model_runs (run_id, model_name, model_kind, model_version,
                        trained_at, is_champion, status)
                    values (?, ?, 'baseline', '1', timestamptz '2026-01-01 00:00:00+00', true,
                        'succeeded')""",
                    [run_id, product],
                )
        publish(module_home, newest - timedelta(days=1))
        publish(module_home, newest)
        yield module_home


def as_of_dates(paths: Paths) -> list[date]:
    dates = frame(paths, "select distinct as_of_date from predictions.user_purchase_propensity")
    return sorted(pd.to_datetime(dates["as_of_date"]).dt.date)


def propensity_at(paths: Paths, as_of: date) -> pd.DataFrame:
    return frame(
        paths,
        f"select * from predictions.user_purchase_propensity where as_of_date = '{as_of}'",
    )


def demand_lines(paths: Paths) -> pd.DataFrame:
    """Raw order lines that count as demand, with their UTC day and item category."""
    lines = pd.read_parquet(paths.raw_table("order_lines"))
    lines = lines[lines["status"] != "cancelled"].copy()
    lines["day"] = lines["order_ts"].dt.tz_convert("UTC").dt.date
    items = pd.read_parquet(paths.raw_table("items"))[["item_id", "category_id"]]
    return lines.merge(items, on="item_id")


# --- dbt unit tests -------------------------------------------------------------------------


def test_consumer_unit_tests_pass_on_hand_computed_cases(shop: Paths) -> None:
    dbt_runner.run_dbt(["test", "--select", "test_type:unit,tag:consumers"], shop)
    target = Path(os.environ["DBT_TARGET_PATH"])
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in results
        if r["unique_id"].startswith("unit_test.")  # not the on-run-start hooks
    }
    assert unit == {
        "replenishment_plan_by_hand": "pass",
        "ads_audiences_rank_cap_and_exclude_recent_buyers": "pass",
        "marketing_segments_rfm_and_rules_by_hand": "pass",
        "marketing_segments_campaign_reach_by_hand": "pass",
        "marketing_segment_sizes_change_between_as_of_dates": "pass",
        "unmet_demand_trends_by_two_count_test": "pass",
    }


# --- ads audiences --------------------------------------------------------------------------


def expected_audiences(paths: Paths, exclude: bool = True) -> pd.DataFrame:
    as_of = as_of_dates(paths)[-1]
    propensity = propensity_at(paths, as_of)
    affinity = frame(
        paths,
        f"select * from predictions.user_category_affinity where as_of_date = '{as_of}'",
    )
    scored = propensity[["user_id", "p_purchase", "expected_spend"]].merge(
        affinity[["user_id", "category_id", "score"]].rename(columns={"score": "affinity"}),
        on="user_id",
    )
    scored["score"] = scored["p_purchase"] * scored["affinity"] * scored["expected_spend"]
    scored = scored[scored["score"] > 0]
    if exclude:
        lines = demand_lines(paths)
        recent = lines[lines["day"] > as_of - timedelta(days=EXCLUDE_DAYS)]
        pairs = set(zip(recent["user_id"], recent["category_id"], strict=True))
        keep = [
            (u, c) not in pairs
            for u, c in zip(scored["user_id"], scored["category_id"], strict=True)
        ]
        scored = scored[keep]
    scored = scored.sort_values(["category_id", "score", "user_id"], ascending=[True, False, True])
    scored["audience_rank"] = scored.groupby("category_id").cumcount() + 1
    return scored[scored["audience_rank"] <= CAP]


def test_audiences_are_the_top_scored_users_who_did_not_just_buy(shop: Paths) -> None:
    audiences = frame(shop, "select * from consumers.ads_audiences")
    expected = expected_audiences(shop)
    key = ["category_id", "audience_rank", "user_id"]
    got = audiences.sort_values(key)[key].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.sort_values(key)[key].reset_index(drop=True))
    # The exclusion is not vacuous here: without it some audience would hold a recent buyer.
    unfiltered = expected_audiences(shop, exclude=False)
    assert set(zip(unfiltered["category_id"], unfiltered["user_id"], strict=True)) - set(
        zip(audiences["category_id"], audiences["user_id"], strict=True)
    )


def test_audience_ranks_are_contiguous_and_capped(shop: Paths) -> None:
    audiences = frame(shop, "select * from consumers.ads_audiences")
    n_categories = frame(shop, "select count(distinct category_id) as n from marts.dim_items")
    assert audiences["category_id"].nunique() == n_categories["n"].item()
    for _, group in audiences.groupby("category_id"):
        assert sorted(group["audience_rank"]) == list(range(1, len(group) + 1))
        assert (group["audience_size"] == len(group)).all() and len(group) <= CAP
        by_rank = group.sort_values("audience_rank")["score"].to_numpy()
        assert (np.diff(by_rank) <= 0).all() and (by_rank > 0).all()
    assert (audiences["audience_size"] == CAP).any()  # the cap binds somewhere
    assert audiences["category_name"].notna().all()


# --- marketing segments ---------------------------------------------------------------------


def test_segments_keep_one_row_per_scored_user_and_date(shop: Paths) -> None:
    segments = frame(shop, "select * from consumers.marketing_segments")
    dates = as_of_dates(shop)
    assert sorted(pd.to_datetime(segments["as_of_date"]).dt.date.unique()) == dates
    for as_of in dates:
        mine = segments[pd.to_datetime(segments["as_of_date"]).dt.date == as_of]
        scored = propensity_at(shop, as_of)
        assert sorted(mine["user_id"]) == sorted(scored["user_id"])
    assert set(segments["segment"]) <= SEGMENTS and segments["recommended_action"].notna().all()
    buyers = segments[segments["frequency"] > 0]
    for column in ("r_score", "f_score", "m_score"):
        assert buyers[column].between(1, 5).all() and buyers[column].nunique() > 1
        assert segments.loc[segments["frequency"] == 0, column].isna().all()
    assert segments["churn_risk"].dropna().between(0, 1).all()


def test_prospects_never_ordered_and_new_users_ordered_first_within_30_days(shop: Paths) -> None:
    as_of = as_of_dates(shop)[-1]
    segments = frame(
        shop, f"select * from consumers.marketing_segments where as_of_date = '{as_of}'"
    ).set_index("user_id")
    lines = demand_lines(shop)
    first_order = lines[lines["day"] <= as_of].groupby("user_id")["day"].min()
    never = set(segments.index) - set(first_order.index)
    assert set(segments.index[segments["segment"] == "prospects"]) == never
    recent_first = {u for u, d in first_order.items() if d > as_of - timedelta(days=30)}
    assert set(segments.index[segments["segment"] == "new"]) == recent_first & set(segments.index)
    assert len(never) > 0 and len(segments) > len(never)


def test_segment_sizes_sum_to_users_scored_and_compare_with_the_previous_date(
    shop: Paths,
) -> None:
    sizes = frame(shop, "select * from consumers.marketing_segment_sizes")
    sizes["as_of_date"] = pd.to_datetime(sizes["as_of_date"]).dt.date
    first, second = as_of_dates(shop)
    assert len(sizes) == 2 * len(SEGMENTS) and set(sizes["segment"]) == SEGMENTS
    for as_of in (first, second):
        day = sizes[sizes["as_of_date"] == as_of]
        assert day["users"].sum() == len(propensity_at(shop, as_of))
        assert (day["users_scored"] == day["users"].sum()).all()
    before = sizes[sizes["as_of_date"] == first].set_index("segment")
    after = sizes[sizes["as_of_date"] == second].set_index("segment")
    assert before["previous_users"].isna().all()
    assert (after["previous_users"] == before["users"]).all()
    assert (after["users_change"] == after["users"] - before["users"]).all()
    shrank = after.index[after["users"] < before["users"]]
    assert set(after.index[after["change_direction"] == "shrank"]) == set(shrank)


# --- unmet demand ---------------------------------------------------------------------------


def test_unmet_demand_counts_both_windows_and_ranks_by_recent_searches(shop: Paths) -> None:
    unmet = frame(shop, "select * from consumers.unmet_demand")
    daily = frame(shop, "select * from marts.fct_unmet_search_demand")
    daily["search_date"] = pd.to_datetime(daily["search_date"]).dt.date
    as_of = pd.Timestamp(unmet["as_of_date"].iloc[0]).date()
    recent = daily[daily["search_date"] > as_of - timedelta(days=28)]
    previous = daily[
        (daily["search_date"] <= as_of - timedelta(days=28))
        & (daily["search_date"] > as_of - timedelta(days=56))
    ]
    counts = pd.DataFrame(
        {
            "recent_searches": recent.groupby("search_term")["searches"].sum(),
            "previous_searches": previous.groupby("search_term")["searches"].sum(),
        }
    ).fillna(0)
    got = unmet.set_index("search_term").sort_index()
    assert list(got.index) == sorted(counts.index)
    assert (got["recent_searches"] == counts["recent_searches"]).all()
    assert (got["previous_searches"] == counts["previous_searches"]).all()
    assert sorted(unmet["demand_rank"]) == list(range(1, len(unmet) + 1))
    assert unmet.sort_values("demand_rank")["recent_searches"].is_monotonic_decreasing
    for row in got.itertuples():
        z = (row.recent_searches - row.previous_searches) / math.sqrt(
            row.recent_searches + row.previous_searches
        )
        assert row.trend_z == pytest.approx(z)
        assert row.trend == ("up" if z >= 1.96 else "down" if z <= -1.96 else "flat")


# --- settings and reruns --------------------------------------------------------------------


def test_a_bad_setting_fails_naming_the_variable(shop: Paths) -> None:
    with pytest.raises(dbt_runner.DbtError, match="var service_level must be"):
        dbt_runner.run_dbt(
            ["run", "--select", "inventory_replenishment_plan"],
            shop,
            variables={"service_level": 1.5},
        )


def checksum(paths: Paths, table: str) -> tuple[int, str]:
    rows = frame(paths, f"select * from consumers.{table}").astype(str)
    lines = sorted(rows.agg("|".join, axis=1))
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_rebuilding_the_consumers_changes_nothing(shop: Paths) -> None:
    before = {table: checksum(shop, table) for table in CONSUMER_TABLES}
    dbt_runner.run_dbt(["run", "--select", "tag:consumers"], shop, variables=SETTINGS)
    after = {table: checksum(shop, table) for table in CONSUMER_TABLES}
    assert after == before
