"""The synthetic shop: contract schemas, determinism, and the facts the pipeline relies on
(purchases match orders, stock censors sales, behaviour leads demand, unmet searches, reviews)."""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_jobs.config import RAW_TABLES, Paths
from ml_jobs.generate import ShopConfig, generate_shop

TS = pa.timestamp("us", tz="UTC")
# docs/contracts.md section 1, spelled out here so the test checks the files against the doc.
CONTRACT: dict[str, list[tuple[str, pa.DataType]]] = {
    "events": [
        ("event_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event_type", pa.string()),
        ("event_ts", TS),
        ("session_id", pa.string()),
        ("quantity", pa.int32()),
        ("price", pa.float64()),
        ("query_text", pa.string()),
    ],
    "order_lines": [
        ("order_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("quantity", pa.int32()),
        ("unit_price", pa.float64()),
        ("order_ts", TS),
        ("status", pa.string()),
    ],
    "items": [
        ("item_id", pa.int64()),
        ("category_id", pa.int64()),
        ("category_name", pa.string()),
        ("brand", pa.string()),
        ("title", pa.string()),
        ("base_price", pa.float64()),
        ("launched_at", TS),
    ],
    "reviews": [
        ("review_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("rating", pa.int32()),
        ("review_text", pa.string()),
        ("review_ts", TS),
    ],
    "inventory_snapshots": [
        ("item_id", pa.int64()),
        ("snapshot_date", pa.date32()),
        ("on_hand", pa.int32()),
        ("on_order", pa.int32()),
        ("lead_time_days", pa.int32()),
        ("unit_cost", pa.float64()),
    ],
    "promotions": [
        ("item_id", pa.int64()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("discount_pct", pa.float64()),
    ],
    "truth": [
        ("item_id", pa.int64()),
        ("demand_date", pa.date32()),
        ("expected_units", pa.float64()),
        ("in_stock", pa.bool_()),
    ],
}

SMALL = ShopConfig(users=400, items=40, days=90, seed=11)
START = pd.Timestamp(SMALL.start_date, tz="UTC")
END = START + pd.Timedelta(days=SMALL.days)


def folder(paths: Paths, table: str) -> Path:
    return paths.truth / "item_daily_demand" if table == "truth" else paths.raw_table(table)


def read(paths: Paths, table: str) -> pd.DataFrame:
    return pq.read_table(folder(paths, table)).to_pandas()


def normalise(query: str) -> str:
    return re.sub(r"\s+", " ", query.strip().lower())


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Paths, dict[str, int], dict[str, pd.DataFrame]]:
    paths = Paths(tmp_path_factory.mktemp("shop"))
    counts = generate_shop(SMALL, paths)
    tables = {t: read(paths, t) for t in CONTRACT}
    return paths, counts, tables


def test_every_table_matches_the_contract(shop):
    paths, counts, tables = shop
    assert set(counts) == set(RAW_TABLES) | {"truth"}
    for table, columns in CONTRACT.items():
        parts = sorted(folder(paths, table).glob("*.parquet"))
        assert [p.name for p in parts] == ["part-00000.parquet"]
        schema = pq.read_schema(parts[0])
        assert [(f.name, f.type) for f in schema] == columns, table
        assert counts[table] == len(tables[table]) > 0, table
    assert counts["items"] == SMALL.items
    assert 20_000 < counts["events"] < 150_000


def test_same_seed_gives_identical_files_and_another_seed_does_not(shop, tmp_path):
    paths, _, _ = shop
    again = Paths(tmp_path / "again")
    generate_shop(SMALL, again)
    for table in CONTRACT:
        first = sorted(folder(paths, table).glob("*.parquet"))
        second = sorted(folder(again, table).glob("*.parquet"))
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second], table
    other = Paths(tmp_path / "other")
    generate_shop(dataclasses.replace(SMALL, seed=12), other)
    assert not read(other, "events").equals(read(paths, "events"))
    assert not read(other, "items").equals(read(paths, "items"))


def test_rerun_replaces_previous_output_and_rolls_parts(tmp_path):
    paths = Paths(tmp_path)
    tiny = ShopConfig(users=50, items=8, days=20, seed=1)
    paths.raw_table("events").mkdir(parents=True)
    stale = paths.raw_table("events") / "part-00009.parquet"
    stale.write_bytes(b"old run")
    counts = generate_shop(dataclasses.replace(tiny, row_group_rows=500, file_rows=1000), paths)
    assert not stale.exists()
    parts = sorted(paths.raw_table("events").glob("*.parquet"))
    assert len(parts) >= 2  # rolled over to more part files
    assert sum(pq.read_metadata(p).num_rows for p in parts) == counts["events"]
    assert len(read(paths, "events")) == counts["events"]
    assert read(paths, "events")["event_id"].is_monotonic_increasing


def test_event_columns_follow_their_event_type(shop):
    _, _, t = shop
    ev = t["events"]
    assert ev["event_id"].is_unique and ev["event_id"].is_monotonic_increasing
    assert ev["event_ts"].is_monotonic_increasing
    assert set(ev["event_type"]) == {"view", "cart", "purchase", "search", "favorite"}
    search = ev["event_type"] == "search"
    assert ev.loc[search, ["item_id", "price", "quantity"]].isna().all().all()
    assert ev.loc[search, "query_text"].notna().all()
    assert ev.loc[~search, ["item_id", "price"]].notna().all().all()
    assert ev.loc[~search, "query_text"].isna().all()
    has_qty = ev["event_type"].isin(["cart", "purchase"])
    assert ev.loc[has_qty, "quantity"].ge(1).all() and ev.loc[~has_qty, "quantity"].isna().all()
    assert ev["session_id"].str.fullmatch(r"s\d{8}-\d+").all()
    # One session per shopper per day: the session's date is the event's date.
    day = ev["event_ts"].dt.strftime("%Y%m%d")
    assert (ev["session_id"].str.slice(1, 9) == day).all()
    assert set(ev.loc[~search, "item_id"]) <= set(t["items"]["item_id"])
    counts = ev["event_type"].value_counts()
    assert counts["view"] > counts["cart"] > counts["purchase"]


def test_every_purchase_event_has_its_order_line(shop):
    _, _, t = shop
    key = ["user_id", "item_id", "quantity", "ts"]
    buys = t["events"].query("event_type == 'purchase'").rename(columns={"event_ts": "ts"})
    lines = t["order_lines"].rename(columns={"order_ts": "ts"})
    left = buys[key].sort_values(key).reset_index(drop=True)
    right = lines[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
    # An order is one shopper at one moment; lines are priced as the events were.
    assert not lines.duplicated(["order_id", "item_id"]).any()  # one line per item per order
    per_order = lines.groupby("order_id").agg(users=("user_id", "nunique"), ts=("ts", "nunique"))
    assert (per_order == 1).all().all()
    assert lines.groupby("order_id").size().max() >= 2  # baskets exist
    merged = lines.merge(buys, on=key, suffixes=("", "_event"))
    assert np.allclose(merged["unit_price"], merged["price"])
    share = lines.drop_duplicates("order_id")["status"].value_counts(normalize=True)
    assert set(share.index) == {"completed", "cancelled", "returned"}
    assert 0.9 < share["completed"] < 0.99


def test_sales_never_exceed_stock_and_stockouts_censor_demand(shop):
    _, _, t = shop
    lines = t["order_lines"].assign(snapshot_date=lambda d: d["order_ts"].dt.date)
    sold = lines.groupby(["item_id", "snapshot_date"], as_index=False)["quantity"].sum()
    inv = t["inventory_snapshots"].merge(sold, how="left", on=["item_id", "snapshot_date"])
    inv["quantity"] = inv["quantity"].fillna(0)
    assert len(inv) == len(t["inventory_snapshots"])  # every sale happened on a snapshot day
    assert (inv["quantity"] <= inv["on_hand"]).all()
    out = inv["on_hand"] == 0
    assert (inv.loc[out, "quantity"] == 0).all()
    assert 0.003 < out.mean() < 0.15  # stock-outs happen on a few % of item-days
    assert (inv["on_hand"] >= 0).all() and (inv["on_order"] >= 0).all()
    assert inv["lead_time_days"].between(2, 10).all()
    items = t["items"].set_index("item_id")
    cost_share = inv["unit_cost"] / inv["item_id"].map(items["base_price"])
    assert cost_share.between(0.45, 0.75).all()
    truth = t["truth"].rename(columns={"demand_date": "snapshot_date"})
    both = truth.merge(inv, on=["item_id", "snapshot_date"], validate="one_to_one")
    assert len(both) == len(truth) == len(inv)
    assert (both["in_stock"] == (both["on_hand"] > 0)).all()
    assert both.loc[~both["in_stock"], "expected_units"].gt(0).all()  # censored, not zero


def test_truth_covers_every_item_day_from_launch(shop):
    _, _, t = shop
    items, truth = t["items"], t["truth"]
    first_day = items["launched_at"].dt.floor("D").clip(lower=START).dt.date
    expected_rows = ((END.date() - first_day).map(lambda d: d.days)).sum()
    assert len(truth) == expected_rows
    assert not truth.duplicated(["item_id", "demand_date"]).any()
    span = truth.groupby("item_id")["demand_date"].agg(["min", "max", "size"])
    assert (span["min"] == first_day.set_axis(items["item_id"])).all()
    assert (span["max"] == (END - pd.Timedelta(days=1)).date()).all()
    assert (truth["expected_units"] >= 0).all()
    new = items[items["launched_at"] > START]
    assert len(new) >= 1  # some items launch during the period (cold start)
    ev = t["events"].merge(items[["item_id", "launched_at"]], on="item_id")
    assert (ev["event_ts"] >= ev["launched_at"]).all()  # nothing happens before launch


def test_demand_mixes_fast_slow_and_intermittent_items(shop):
    _, _, t = shop
    lam = t["truth"]["expected_units"]
    assert 0.7 < lam.mean() < 4.0
    per_item = t["truth"].groupby("item_id")["expected_units"].mean()
    assert (per_item < 0.3).mean() > 0.1  # intermittent items: mostly zero days
    assert per_item.max() > 5.0  # and a few fast movers
    units = t["order_lines"].query("status != 'cancelled'")["quantity"].sum()
    in_stock = t["truth"].query("in_stock")["expected_units"].sum()
    assert 0.85 < units / in_stock < 1.1  # truth is the mean of what sells when in stock


def test_views_lead_demand(shop):
    _, _, t = shop
    views = (
        t["events"]
        .query("event_type == 'view'")
        .assign(demand_date=lambda d: d["event_ts"].dt.date)
        .groupby(["item_id", "demand_date"])
        .size()
        .rename("views")
    )
    df = t["truth"].join(views, on=["item_id", "demand_date"]).fillna({"views": 0})
    lead, lag = [], []
    for _, g in df.sort_values(["item_id", "demand_date"]).groupby("item_id"):
        if len(g) < 40 or g["views"].mean() < 2:
            continue
        v, lam = np.log1p(g["views"].to_numpy()), np.log(g["expected_units"].to_numpy())
        lead.append(np.corrcoef(v[:-2], lam[2:])[0, 1])  # views today vs demand in 2 days
        lag.append(np.corrcoef(v[2:], lam[:-2])[0, 1])  # views today vs demand 2 days ago
    assert len(lead) >= 10
    assert np.mean(lead) > np.mean(lag) + 0.08
    assert np.mean(np.array(lead) > np.array(lag)) > 0.75


def test_searches_include_unmet_trending_terms(shop):
    _, _, t = shop
    search = t["events"].query("event_type == 'search'")
    query = search["query_text"].map(normalise)
    known = {n.lower() for n in t["items"]["category_name"]} | {
        b.lower() for b in t["items"]["brand"]
    }
    unmet = ~query.isin(known)
    assert 0.05 < unmet.mean() < 0.2
    assert (search["query_text"] != query).mean() > 0.1  # case and whitespace vary
    titles = " ".join(t["items"]["title"]).lower()
    assert all(term not in titles for term in set(query[unmet]))
    half = search["event_ts"] < START + pd.Timedelta(days=SMALL.days / 2)
    paddle = query == "pickleball paddle"
    assert (paddle & ~half).sum() > 1.5 * (paddle & half).sum()  # a trending unmet need


def test_promotions_are_planned_windows_that_set_the_price(shop):
    _, _, t = shop
    promos = t["promotions"]
    length = (pd.to_datetime(promos["end_date"]) - pd.to_datetime(promos["start_date"])).dt.days
    assert (length + 1).between(3, 14).all()
    assert promos["discount_pct"].between(10, 40).all()
    ordered = promos.sort_values(["item_id", "start_date"])
    prev_end = ordered.groupby("item_id")["end_date"].shift()
    assert (prev_end.isna() | (ordered["start_date"] > prev_end)).all()  # never overlap
    assert (promos["start_date"] >= END.date()).any()  # known in advance, past the data
    lines = t["order_lines"].assign(day=lambda d: d["order_ts"].dt.date)
    lines = lines.merge(t["items"][["item_id", "base_price"]], on="item_id")
    spans = lines.merge(promos, on="item_id", how="left")
    active = (spans["start_date"] <= spans["day"]) & (spans["day"] <= spans["end_date"])
    discount = spans["discount_pct"].where(active, 0.0)
    per_line = discount.groupby([spans["order_id"], spans["item_id"]]).max()
    lines = lines.set_index(["order_id", "item_id"]).join(per_line.rename("pct"))
    assert np.allclose(
        lines["unit_price"], (lines["base_price"] * (1 - lines["pct"] / 100)).round(2)
    )
    assert (lines["pct"] > 0).mean() > 0.05


POSITIVE = ("love", "great", "excellent", "perfect", "recommend", "amazing", "fantastic", "happy")
NEGATIVE = ("disappointed", "broke", "poor", "terrible", "waste", "return", "awful", "cheap")


def test_reviews_follow_ratings_and_purchases(shop):
    _, _, t = shop
    reviews = t["reviews"]
    assert reviews["rating"].between(1, 5).all() and reviews["review_id"].is_unique
    assert reviews["rating"].nunique() == 5
    text = reviews["review_text"].str.lower()
    pos = text.map(lambda s: any(w in s for w in POSITIVE))
    neg = text.map(lambda s: any(w in s for w in NEGATIVE))
    high, low = reviews["rating"] >= 4, reviews["rating"] <= 2
    assert (pos[high] & ~neg[high]).all()
    assert (neg[low] & ~pos[low]).all()
    assert not (pos | neg)[reviews["rating"] == 3].any()
    kept = t["order_lines"].query("status != 'cancelled'")
    bought = reviews.merge(kept, on=["user_id", "item_id"])
    bought = bought[bought["order_ts"] < bought["review_ts"]]
    assert set(bought["review_id"]) == set(reviews["review_id"])  # reviewers bought first
    # Ratings follow a latent item quality: items differ more than chance allows.
    per_item = reviews.groupby("item_id")["rating"].agg(["mean", "size"]).query("size >= 5")
    assert per_item["mean"].max() - per_item["mean"].min() > 1.0


def test_no_timestamp_after_the_end(shop):
    _, _, t = shop
    for table, column in [("events", "event_ts"), ("order_lines", "order_ts")]:
        assert t[table][column].min() >= START and t[table][column].max() < END
    assert t["reviews"]["review_ts"].max() < END
    assert t["items"]["launched_at"].max() < END
    for table, column in [("inventory_snapshots", "snapshot_date"), ("truth", "demand_date")]:
        assert t[table][column].min() == START.date()
        assert t[table][column].max() == (END - pd.Timedelta(days=1)).date()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, "users must be positive"),
        ({"items": -3}, "items must be positive"),
        ({"days": 0}, "days must be positive"),
        ({"categories": 13}, "categories must be at most 12"),
        ({"seed": -1}, "seed must be non-negative"),
        ({"promo_rate": 1.5}, r"promo_rate must be within \[0, 1\]"),
        ({"unmet_search_share": 1.0}, "unmet_search_share must be below 1"),
        ({"cancel_rate": 0.6, "return_rate": 0.6}, "cancel_rate \\+ return_rate"),
        ({"views_per_unit": -1.0}, "views_per_unit must be >= 0"),
        ({"start_date": "2026-01-01"}, "start_date must be a datetime.date"),
        ({"start_date": datetime.datetime(2026, 1, 1)}, "start_date must be a datetime.date"),
    ],
)
def test_config_validation(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        generate_shop(dataclasses.replace(ShopConfig(), **change), Paths(tmp_path))
    assert not (tmp_path / "raw").exists()  # nothing written for a bad config
