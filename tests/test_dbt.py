"""The dbt project on a real DuckDB warehouse, checked against the raw files it was built from.

One small synthetic shop (80 users, 12 items, 60 days) is generated, a few dirty rows are added
to its raw files (duplicate events and order lines, an unknown event type, a badly cased one),
and the whole pipeline's dbt side runs once for the module: the warehouse build, two forecast
runs written back (a champion and a newer challenger), then the consumer build. Every test
recomputes its expectation from the raw Parquet with pandas, independently of the SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ml_jobs import dbt_runner
from ml_jobs.config import Paths
from ml_jobs.generate import ShopConfig, generate_shop
from ml_jobs.warehouse import connect, write_predictions

SHOP = ShopConfig(users=80, items=12, days=60)
EVENT_TYPES = {"view", "cart", "purchase", "search", "favorite"}
CHAMPION, CHALLENGER = "run-champion", "run-challenger"
HORIZON = 28
BIG_ITEM_P50 = 40.0  # the hand-checked item's daily p50: large enough to need an order
Z = NormalDist().inv_cdf(0.95)  # var service_level 0.95
NEW_ITEM = 1_000  # added to the catalogue, launched mid-window, never active

USER_FEATURES = {
    "user_id": pa.int64(),
    "feature_ts": pa.timestamp("us", tz="UTC"),
    "created_ts": pa.timestamp("us", tz="UTC"),
    **{
        name: pa.int64()
        for name in (
            "views_7d",
            "carts_7d",
            "purchases_7d",
            "views_28d",
            "carts_28d",
            "purchases_28d",
            "purchases_90d",
        )
    },
    "spend_90d": pa.float64(),
    "days_since_last_purchase": pa.float64(),
    "active_days_28d": pa.int64(),
    "cart_to_purchase_28d": pa.float64(),
    "views_90d": pa.int64(),
    "carts_90d": pa.int64(),
    "view_to_cart_28d": pa.float64(),
    "orders_90d": pa.int64(),
    "avg_basket_units_90d": pa.float64(),
    "avg_order_value_90d": pa.float64(),
    "top_category_share_28d": pa.float64(),
    "category_entropy_28d": pa.float64(),
    "categories_28d": pa.int64(),
    "top_purchase_category_share_28d": pa.float64(),
}
ITEM_FEATURES = {
    "item_id": pa.int64(),
    "feature_ts": pa.timestamp("us", tz="UTC"),
    "created_ts": pa.timestamp("us", tz="UTC"),
    **{name: pa.int64() for name in ("units_7d", "units_28d", "views_7d", "views_28d", "carts_7d")},
    "view_to_purchase_28d": pa.float64(),
    "avg_price_28d": pa.float64(),
    "list_price": pa.float64(),
    "is_promo": pa.int64(),
    "review_count_90d": pa.int64(),
    "avg_rating_90d": pa.float64(),
    "trend_7d_vs_28d": pa.float64(),
    "carts_28d": pa.int64(),
    "price_vs_category_median": pa.float64(),
    "avg_sentiment_90d": pa.float64(),
}


# --- set-up ---------------------------------------------------------------------------------


def add_dirty_rows(paths: Paths) -> None:
    """A second raw file per table with rows staging must clean: duplicates and bad values."""
    events = pq.read_table(next(paths.raw_table("events").glob("*.parquet")))
    next_id = pc.max(events["event_id"]).as_py() + 1
    views = events.filter(pc.equal(events["event_type"], "view"))
    odd_case = (
        views.slice(0, 1)
        .set_column(0, "event_id", pa.array([next_id], pa.int64()))
        .set_column(3, "event_type", pa.array([" View "], pa.string()))
    )
    unknown = (
        views.slice(1, 1)
        .set_column(0, "event_id", pa.array([next_id + 1], pa.int64()))
        .set_column(3, "event_type", pa.array(["teleport"], pa.string()))
    )
    dirty = pa.concat_tables([events.slice(0, 5), odd_case, unknown])
    pq.write_table(dirty, paths.raw_table("events") / "part-dirty.parquet")

    lines = pq.read_table(next(paths.raw_table("order_lines").glob("*.parquet")))
    pq.write_table(lines.slice(0, 3), paths.raw_table("order_lines") / "part-dirty.parquet")


def add_catalogue_cases(paths: Paths) -> None:
    """Launch dates the spine must handle: after the first sale, unknown, and a new item
    launched mid-window that nobody has touched (and that has no stock snapshots)."""
    path = next(paths.raw_table("items").glob("*.parquet"))
    items = pq.read_table(path).to_pandas().sort_values("item_id").reset_index(drop=True)
    start = pd.Timestamp(SHOP.start_date, tz="UTC")
    items.loc[2, "launched_at"] = start + pd.Timedelta(days=20, hours=6)
    items.loc[3, "launched_at"] = pd.NaT
    new_item = items.iloc[[0]].assign(
        item_id=NEW_ITEM, title="New arrival", launched_at=start + pd.Timedelta(days=30)
    )
    items = pd.concat([items, new_item], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(items, schema=pq.read_schema(path)), path)


def forecast_frame(item_ids: list[int], as_of: date) -> pd.DataFrame:
    """Two runs of 28-day forecasts: the champion's and a newer challenger's (10x larger)."""
    rows: list[dict[str, Any]] = []
    predicted_at = pd.Timestamp(datetime.combine(as_of, datetime.min.time(), UTC))
    for run_id, scale in ((CHAMPION, 1.0), (CHALLENGER, 10.0)):
        for rank, item_id in enumerate(item_ids):
            for horizon in range(1, HORIZON + 1):
                if rank == 0:
                    p50 = BIG_ITEM_P50 + horizon  # the hand-checked item
                elif rank == 1:
                    p50 = 0.0  # forecast zero: no spread, no risk, no cover
                else:
                    p50 = 0.5 + 0.1 * rank + 0.05 * horizon
                spread = 0.0 if p50 == 0 else 0.3 * p50 + 0.1 * horizon
                rows.append(
                    {
                        "run_id": run_id,
                        "model_name": "demand_test",
                        "model_version": "1",
                        "as_of_date": as_of,
                        "predicted_at": predicted_at,
                        "item_id": item_id,
                        "target_date": as_of + timedelta(days=horizon),
                        "horizon": horizon,
                        "p10": scale * max(p50 - spread, 0.0),
                        "p50": scale * p50,
                        "p90": scale * (p50 + 1.5 * spread),
                    }
                )
    return pd.DataFrame(rows)


def register_runs(paths: Paths) -> None:
    """The registry rows: an older champion and a newer challenger that is not champion."""
    with connect(paths.warehouse) as con:
        con.execute(
            """insert into ml.model_runs
                (run_id, model_name, model_kind, model_version, trained_at, is_champion, status)
            values
                (?, 'demand_test', 'baseline', '1', timestamptz '2026-03-02 01:00:00+00',
                 true, 'succeeded'),
                (?, 'demand_test', 'torch', '1', timestamptz '2026-03-02 02:00:00+00',
                 false, 'succeeded')""",
            [CHAMPION, CHALLENGER],
        )


@pytest.fixture(scope="module")
def shop(module_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    """The shop, built: warehouse, forecasts written back, consumers built."""
    dbt_files = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        # Keep this build's target/ and logs/ apart from builds running in the checkout.
        patch.setenv("DBT_TARGET_PATH", str(dbt_files / "target"))
        patch.setenv("DBT_LOG_PATH", str(dbt_files / "logs"))
        generate_shop(SHOP, module_home)
        add_dirty_rows(module_home)
        add_catalogue_cases(module_home)
        dbt_runner.build_warehouse(module_home)
        items = sorted(raw(module_home, "items")["item_id"].tolist())
        as_of = query(module_home, "select max(demand_date) from marts.fct_item_daily_demand")
        write_predictions(
            module_home.warehouse, "item_demand_forecast", forecast_frame(items, as_of[0][0])
        )
        register_runs(module_home)
        dbt_runner.build_consumers(module_home)
        yield module_home


# --- reading back ---------------------------------------------------------------------------


def query(paths: Paths, sql: str) -> list[tuple[Any, ...]]:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


def frame(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


def raw(paths: Paths, table: str) -> pd.DataFrame:
    return pd.read_parquet(paths.raw_table(table))


def clean_events(paths: Paths) -> pd.DataFrame:
    """Raw events as staging should keep them: known types, one row per event_id."""
    events = raw(paths, "events")
    events["event_type"] = events["event_type"].str.strip().str.lower()
    events = events[events["event_type"].isin(EVENT_TYPES)]
    events = events.sort_values(["event_id", "event_ts"]).drop_duplicates("event_id")
    events["day"] = events["event_ts"].dt.tz_convert("UTC").dt.date
    return events


def demand_lines(paths: Paths) -> pd.DataFrame:
    """Raw order lines that count as demand, one per (order, item)."""
    lines = raw(paths, "order_lines").drop_duplicates(["order_id", "item_id"])
    lines = lines[lines["status"] != "cancelled"].copy()
    lines["day"] = lines["order_ts"].dt.tz_convert("UTC").dt.date
    return lines


def data_window(paths: Paths) -> tuple[date, date]:
    days = pd.concat([clean_events(paths)["day"], demand_lines(paths)["day"]])
    return days.min(), days.max()


# --- staging --------------------------------------------------------------------------------


def test_schemas_are_named_exactly(shop: Paths) -> None:
    schemas = {row[0] for row in query(shop, "select schema_name from information_schema.schemata")}
    assert {"staging", "intermediate", "marts", "consumers"} <= schemas
    assert not any(s.startswith("main_") for s in schemas)


def test_staging_cleans_and_deduplicates(shop: Paths) -> None:
    expected = clean_events(shop)
    stg = frame(shop, "select event_id, event_type from staging.stg_shop__events")
    assert len(stg) == len(expected) == stg["event_id"].nunique()
    assert set(stg["event_type"]) <= EVENT_TYPES
    odd_case_id = raw(shop, "events")["event_id"].max() - 1  # the ' View ' row
    assert stg.set_index("event_id").loc[odd_case_id, "event_type"] == "view"
    lines = query(
        shop,
        "select count(*), count(distinct (order_id, item_id)) from staging.stg_shop__order_lines",
    )
    assert (
        lines[0][0]
        == lines[0][1]
        == len(raw(shop, "order_lines").drop_duplicates(["order_id", "item_id"]))
    )


def test_search_terms_are_normalized(shop: Paths) -> None:
    terms = query(
        shop,
        "select distinct search_term from staging.stg_shop__events where event_type = 'search'",
    )
    assert terms and all(re.fullmatch(r"[a-z0-9]+( [a-z0-9]+)*", t) for (t,) in terms)


# --- fct_item_daily_demand ------------------------------------------------------------------


def test_item_days_are_a_complete_spine(shop: Paths) -> None:
    first_day, last_day = data_window(shop)
    items = raw(shop, "items").set_index("item_id")
    activity = (
        pd.concat([clean_events(shop).dropna(subset=["item_id"]), demand_lines(shop)])
        .groupby("item_id")["day"]
        .min()
    )
    fct = frame(
        shop,
        """select item_id, min(demand_date) as first, max(demand_date) as last,
                  count(*) as days, count(distinct demand_date) as distinct_days
           from marts.fct_item_daily_demand group by item_id""",
    ).set_index("item_id")
    expected_total = 0
    for item_id, item in items.iterrows():
        if pd.isna(item["launched_at"]):
            start = activity.get(item_id, first_day)
        else:
            on_sale = max(item["launched_at"].tz_convert("UTC").date(), first_day)
            start = min(on_sale, activity.get(item_id, on_sale))
        days = (last_day - start).days + 1
        expected_total += max(days, 0)
        assert fct.loc[item_id, "first"].date() == start
        assert fct.loc[item_id, "last"].date() == last_day
        assert fct.loc[item_id, "days"] == fct.loc[item_id, "distinct_days"] == days
    assert query(shop, "select count(*) from marts.fct_item_daily_demand")[0][0] == expected_total
    assert fct.loc[NEW_ITEM, "first"].date() == SHOP.start_date + timedelta(days=30)


def test_units_sold_equal_raw_demand(shop: Paths) -> None:
    expected = demand_lines(shop).groupby("item_id")["quantity"].sum()
    expected[NEW_ITEM] = 0  # on the spine, never sold
    got = frame(
        shop,
        "select item_id, sum(units_sold) as units from marts.fct_item_daily_demand group by 1",
    ).set_index("item_id")["units"]
    assert expected.sum() > 0
    pd.testing.assert_series_equal(
        got.sort_index().astype("int64"), expected.sort_index().astype("int64"), check_names=False
    )
    zero_days = query(
        shop, "select count(*) from marts.fct_item_daily_demand where units_sold = 0"
    )[0][0]
    assert zero_days > 0  # zero-filled, not left out


def test_stockouts_follow_snapshots(shop: Paths) -> None:
    fct = frame(
        shop,
        "select item_id, demand_date, on_hand, is_stockout from marts.fct_item_daily_demand",
    )
    snapshots = raw(shop, "inventory_snapshots")
    fct["demand_date"] = pd.to_datetime(fct["demand_date"]).dt.date
    merged = fct.merge(
        snapshots,
        how="left",
        left_on=["item_id", "demand_date"],
        right_on=["item_id", "snapshot_date"],
        suffixes=("", "_raw"),
    )
    matched = merged["snapshot_date"].notna()
    assert matched.any() and merged.loc[matched, "is_stockout"].any()
    assert (merged.loc[matched, "is_stockout"] == (merged.loc[matched, "on_hand_raw"] == 0)).all()
    assert (merged.loc[matched, "on_hand"] == merged.loc[matched, "on_hand_raw"]).all()
    assert not merged.loc[~matched, "is_stockout"].any()
    assert merged.loc[~matched, "on_hand"].isna().all()


def test_promotions_and_category_searches(shop: Paths) -> None:
    fct = frame(
        shop,
        """select item_id, demand_date, category_id, discount_pct, is_promo, category_searches
           from marts.fct_item_daily_demand""",
    )
    fct["demand_date"] = pd.to_datetime(fct["demand_date"]).dt.date
    promotions = raw(shop, "promotions")
    for row in fct.itertuples():
        covering = promotions[
            (promotions["item_id"] == row.item_id)
            & (promotions["start_date"] <= row.demand_date)
            & (promotions["end_date"] >= row.demand_date)
        ]
        assert row.is_promo == (len(covering) > 0)
        assert row.discount_pct == (covering["discount_pct"].max() if len(covering) else 0.0)

    def words(text: str) -> str:
        return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "

    searches = clean_events(shop)
    searches = searches[searches["event_type"] == "search"]
    categories = raw(shop, "items").drop_duplicates("category_id")
    matched = 0
    for category in categories.itertuples():
        names_it = searches["query_text"].map(
            lambda q, c=category: words(c.category_name) in words(q)
        )
        mine = fct[fct["category_id"] == category.category_id]
        per_day = mine.groupby("demand_date")["category_searches"]
        assert (per_day.min() == per_day.max()).all()  # every item of the category sees the same
        got = {d: n for d, n in per_day.first().items() if n > 0}
        expected = searches[names_it].groupby("day").size()
        assert got == {d: n for d, n in expected.items() if d in per_day.groups}
        matched += sum(got.values())
    assert matched > 0


# --- feature snapshots ----------------------------------------------------------------------


def test_user_features_are_point_in_time(shop: Paths) -> None:
    events = clean_events(shop)
    purchases = events[events["event_type"] == "purchase"]
    user_id = int(purchases["user_id"].value_counts().idxmax())
    mine = events[events["user_id"] == user_id]
    active_days = set(mine["day"]) | set(demand_lines(shop).query("user_id == @user_id")["day"])
    rows = frame(
        shop,
        f"""select feature_ts, created_ts, purchases_7d, views_28d, active_days_28d
            from marts.user_features where user_id = {user_id} order by feature_ts""",
    )
    first_day, last_day = data_window(shop)
    snapshots = [first_day + timedelta(days=n) for n in range(1, (last_day - first_day).days + 2)]
    expected_days = [
        d for d in snapshots if any(d - timedelta(days=90) <= a < d for a in active_days)
    ]
    got_days = [ts.date() for ts in rows["feature_ts"]]
    assert got_days == expected_days
    assert (rows["created_ts"] == rows["feature_ts"]).all()
    same_day_purchase = False
    for row in rows.itertuples():
        day = row.feature_ts.date()
        start = pd.Timestamp(day - timedelta(days=7), tz="UTC")
        end = pd.Timestamp(day, tz="UTC")
        bought = purchases[purchases["user_id"] == user_id]
        expected = ((bought["event_ts"] >= start) & (bought["event_ts"] < end)).sum()
        assert row.purchases_7d == expected, f"purchases_7d at {day}"
        views = mine[(mine["event_type"] == "view") & (mine["day"] < day)]
        assert row.views_28d == (views["day"] >= day - timedelta(days=28)).sum()
        recent = {a for a in active_days if day - timedelta(days=28) <= a < day}
        assert row.active_days_28d == len(recent)
        same_day_purchase |= (bought["day"] == day).any()
    assert same_day_purchase  # some snapshot day had a purchase that its row must not see


def test_feature_exports_follow_the_contract(shop: Paths) -> None:
    _, last_day = data_window(shop)
    newest = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC)
    for name, columns in (("user_features", USER_FEATURES), ("item_features", ITEM_FEATURES)):
        months = sorted(shop.export_dir(name).glob("????-??.parquet"))
        assert months
        for path in months:  # one file per month of feature_ts, rows in key order
            month = pq.read_table(path)
            assert {f"{ts:%Y-%m}" for ts in month.column("feature_ts").to_pylist()} == {path.stem}
            order = month.select(["feature_ts", name.replace("features", "id")]).to_pylist()
            assert order == sorted(order, key=lambda row: tuple(row.values()))
        table = pq.read_table(shop.export_dir(name))
        assert table.schema.names == list(columns)
        for column, dtype in columns.items():
            assert table.schema.field(column).type == dtype, f"{name}.{column}"
        assert table.num_rows > 0
        feature_ts = table.column("feature_ts").to_pylist()
        assert max(feature_ts) == newest
        warehouse_rows = query(shop, f"select count(*) from marts.{name}")[0][0]
        assert warehouse_rows == table.num_rows


def test_item_features_match_daily_demand(shop: Paths) -> None:
    _, last_day = data_window(shop)
    day = last_day + timedelta(days=1)
    lines = demand_lines(shop)
    features = frame(
        shop,
        f"""select item_id, units_7d, units_28d, trend_7d_vs_28d, is_promo
            from marts.item_features
            where feature_ts = timestamptz '{day.isoformat()} 00:00:00+00'""",
    ).set_index("item_id")
    assert len(features) > 0
    for item_id, row in features.iterrows():
        mine = lines[(lines["item_id"] == item_id) & (lines["day"] < day)]
        units_7d = mine.loc[mine["day"] >= day - timedelta(days=7), "quantity"].sum()
        units_28d = mine.loc[mine["day"] >= day - timedelta(days=28), "quantity"].sum()
        assert (row.units_7d, row.units_28d) == (units_7d, units_28d)
        if units_28d:
            assert row.trend_7d_vs_28d == pytest.approx(units_7d / (units_28d / 4))
        else:
            assert math.isnan(row.trend_7d_vs_28d)
    promotions = raw(shop, "promotions")
    promoted = set(
        promotions[(promotions["start_date"] <= day) & (promotions["end_date"] >= day)]["item_id"]
    )
    assert {i for i, r in features.iterrows() if r.is_promo == 1} == promoted & set(features.index)


# --- consumers ------------------------------------------------------------------------------


def test_replenishment_plan_uses_the_champion(shop: Paths) -> None:
    plan = frame(shop, "select * from consumers.inventory_replenishment_plan")
    assert len(plan) == len(raw(shop, "items"))
    assert set(plan["run_id"]) == {CHAMPION}
    known = plan[plan["item_id"] != NEW_ITEM]
    assert known["on_hand"].notna().all()
    assert (known["recommended_order_qty"] >= 0).all()
    assert known["stockout_risk"].between(0, 1).all()
    unstocked = plan[plan["item_id"] == NEW_ITEM].iloc[0]  # no snapshot: no stock position
    assert pd.isna(unstocked["on_hand"]) and pd.isna(unstocked["recommended_order_qty"])


def test_replenishment_plan_by_hand(shop: Paths) -> None:
    items = sorted(raw(shop, "items")["item_id"].tolist())
    big, zero = items[0], items[1]
    forecast = forecast_frame(items, data_window(shop)[1])
    forecast = forecast[forecast["run_id"] == CHAMPION]
    snapshots = raw(shop, "inventory_snapshots")
    plan = frame(shop, "select * from consumers.inventory_replenishment_plan").set_index("item_id")

    latest = snapshots[snapshots["item_id"] == big].sort_values("snapshot_date").iloc[-1]
    lead = int(latest["lead_time_days"])
    days = forecast[(forecast["item_id"] == big) & (forecast["horizon"] <= lead)]
    daily_mean = 0.3 * forecast["p10"] + 0.4 * forecast["p50"] + 0.3 * forecast["p90"]
    mean = daily_mean[days.index].sum()
    sigma = math.sqrt((((days["p90"] - days["p10"]) / 2.563) ** 2).sum())
    position = latest["on_hand"] + latest["on_order"]
    reorder_point = mean + Z * sigma
    row = plan.loc[big]
    assert row.lead_time_days == lead and row.on_hand == latest["on_hand"]
    assert row.lead_time_demand == pytest.approx(mean)
    assert row.lead_time_sigma == pytest.approx(sigma)
    assert row.safety_stock == pytest.approx(Z * sigma)
    assert row.reorder_point == pytest.approx(reorder_point)
    assert row.recommended_order_qty == max(0, math.ceil(reorder_point - position))
    assert row.recommended_order_qty > 0
    assert row.days_of_cover == pytest.approx(
        latest["on_hand"] / daily_mean[forecast["item_id"] == big].mean()
    )
    risk = 1 / (1 + math.exp(-1.702 * (mean - position) / sigma))
    assert row.stockout_risk == pytest.approx(risk)

    quiet = plan.loc[zero]
    assert quiet.lead_time_demand == 0 and quiet.lead_time_sigma == 0
    assert quiet.recommended_order_qty == 0 and quiet.stockout_risk == 0
    assert np.isnan(quiet.days_of_cover)


# --- the runner -----------------------------------------------------------------------------


def test_failed_build_names_the_failing_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    empty = Paths(tmp_path / "home")
    with pytest.raises(dbt_runner.DbtError) as failure:
        dbt_runner.build_consumers(empty)  # no predictions tables yet
    message = str(failure.value)
    assert re.search(
        r"source_not_null_predictions_item_demand_forecast_latest_p50\S* \[error\]", message
    )
    assert 'Table with name "predictions.item_demand_forecast_latest" does not exist' in message
    assert "skipped because of the failures above" in message
    assert "model.basketcast.inventory_replenishment_plan" in message
