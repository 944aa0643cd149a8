"""The same dbt project builds on the real Postgres server and agrees with the DuckDB build.

A tiny synthetic shop (with a few bad rows) is built twice from the same raw files: on DuckDB,
which reads the Parquet in place, and on Postgres (127.0.0.1:5432, a database of its own that
is dropped afterwards), after ml_jobs.ingest.postgres loads the files with COPY. Key tables
must hold the same rows and the same sums per item and per user. Skipped only when no
Postgres server answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_jobs import dbt_runner, pipeline
from ml_jobs.config import RAW_TABLES, Paths
from ml_jobs.generate import ShopConfig, generate_shop
from ml_jobs.ingest.campaigns import write_campaigns
from ml_jobs.ingest.postgres import PostgresSettings, create_database, drop_database, load_raw
from ml_jobs.ingest.raw_output import write_raw
from ml_jobs.warehouse import connect

SHOP = ShopConfig(users=40, items=8, days=20)
# The Postgres build leaves out the consumer marts (they need forecasts written back).
POSTGRES_BUILD = ["build", "--exclude", "tag:consumers"]
TABLES = [
    "staging.stg_shop__events",
    "staging.stg_shop__order_lines",
    "staging.stg_shop__items",
    "staging.stg_shop__reviews",
    "staging.stg_shop__inventory_snapshots",
    "staging.stg_shop__promotions",
    "audit.rejected_rows",
    "intermediate.int_date_spine",
    "marts.fct_item_daily_demand",
    "marts.fct_user_daily_activity",
    "marts.dim_items",
    "marts.dim_users",
    "marts.user_features",
    "marts.item_features",
    "intermediate.int_review_sentiment",
    "intermediate.int_user_daily_category_activity",
    "ml.ml_user_propensity_labels",
    "staging.stg_shop__campaigns",
    "marts.fct_user_campaigns",
]


def settings() -> PostgresSettings:
    base = PostgresSettings.from_env()
    return PostgresSettings(
        host=base.host,
        port=base.port,
        user=base.user,
        password=base.password,
        database=f"basketcast_test_{os.getpid()}",
    )


def add_campaigns(paths: Paths) -> None:
    """The optional campaigns table: three users in two campaigns, and one bad row."""
    users = sorted(set(pq.read_table(paths.raw_table("order_lines"))["user_id"].to_pylist()))[:3]
    day = pd.Timestamp("2026-01-05").date()
    write_campaigns(
        paths,
        pd.DataFrame(
            {
                "campaign_id": [1, 1, 2, 2],
                "user_id": [users[0], users[1], users[2], users[0]],
                "campaign_type": ["Type A", "Type A", "Type B", "Type B"],
                "start_date": [day, day, day, day],
                "end_date": [day + pd.Timedelta(days=9)] * 3 + [day - pd.Timedelta(days=1)],
            }
        ),
    )


def add_bad_rows(paths: Paths) -> None:
    events = pq.read_table(next(paths.raw_table("events").glob("*.parquet")))
    bad = events.slice(0, 3).to_pandas()
    bad.loc[2, "event_type"] = "teleport"
    bad.loc[2, "event_id"] = int(pa.compute.max(events["event_id"]).as_py()) + 1
    pq.write_table(
        pa.Table.from_pandas(bad, schema=events.schema, preserve_index=False),
        paths.raw_table("events") / "part-bad.parquet",
    )


@pytest.fixture(scope="module")
def builds(
    module_home: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Paths, PostgresSettings]]:
    pg = settings()
    try:
        create_database(pg, drop=True)
    except Exception as error:  # noqa: BLE001 - any connection failure means no server here
        pytest.skip(f"no Postgres server at {pg.host}:{pg.port}: {error}")
    folder = tmp_path_factory.mktemp("dbt")
    env = {
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
        "BASKETCAST_PG_DATABASE": pg.database,
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            generate_shop(SHOP, module_home)
            add_bad_rows(module_home)
            add_campaigns(module_home)
            loaded = load_raw(module_home, pg)
            assert set(loaded) == {*RAW_TABLES, "campaigns"} and loaded["events"] > 1000
            dbt_runner.build_warehouse(module_home)
            dbt_runner.run_dbt(POSTGRES_BUILD, module_home, target="postgres")
            yield module_home, pg
    finally:
        drop_database(pg)


def duck(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


def postgres(pg: PostgresSettings, sql: str) -> pd.DataFrame:
    con = pg.connect()
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            columns = [c.name for c in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)
    finally:
        con.close()


def both(builds: tuple[Paths, PostgresSettings], sql: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    paths, pg = builds
    return duck(paths, sql), postgres(pg, sql)


def assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same columns, same rows; numbers equal up to float rounding."""
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right)
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if pd.api.types.is_numeric_dtype(left[column]) or pd.api.types.is_bool_dtype(left[column]):
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), rtol=1e-9, equal_nan=True, err_msg=column
            )
        else:
            assert [str(x) for x in a] == [str(x) for x in b], column


def test_every_table_has_the_same_rows(builds: tuple[Paths, PostgresSettings]) -> None:
    counts: dict[str, Any] = {}
    for table in TABLES:
        d, p = both(builds, f"select count(*) as n from {table}")
        assert int(d.iloc[0, 0]) == int(p.iloc[0, 0]) > 0, table
        counts[table] = int(d.iloc[0, 0])
    d, p = both(
        builds,
        """select source_table, rejection_reason, count(*) as n from audit.rejected_rows
           group by 1, 2 order by 1, 2""",
    )
    assert_same(d, p)
    assert set(d["rejection_reason"]) == {
        "duplicate event_id",
        "unknown event_type",
        "ends before it starts",
    }


def test_item_daily_demand_sums_per_item(builds: tuple[Paths, PostgresSettings]) -> None:
    d, p = both(
        builds,
        """select item_id, count(*) as days, sum(units_sold) as units, sum(order_count) as orders,
                  sum(revenue) as revenue, sum(views) as views, sum(carts) as carts,
                  sum(favorites) as favorites, sum(category_searches) as searches,
                  sum(price) as price, sum(discount_pct) as discount,
                  sum(case when is_stockout then 1 else 0 end) as stockouts,
                  sum(on_hand) as on_hand,
                  cast(min(demand_date) as varchar) as first_day
           from marts.fct_item_daily_demand group by item_id order by item_id""",
    )
    assert d["units"].sum() > 0 and d["on_hand"].sum() > 0
    assert_same(d, p)


def test_features_agree(builds: tuple[Paths, PostgresSettings]) -> None:
    d, p = both(
        builds,
        """select user_id, count(*) as snapshots, sum(views_7d) as views_7d,
                  sum(purchases_28d) as purchases_28d, sum(spend_90d) as spend_90d,
                  sum(days_since_last_purchase) as recency, sum(active_days_28d) as active,
                  sum(cart_to_purchase_28d) as conversion
           from marts.user_features group by user_id order by user_id""",
    )
    assert_same(d, p)
    d, p = both(
        builds,
        """select item_id, count(*) as snapshots, sum(units_7d) as units_7d,
                  sum(units_28d) as units_28d, sum(view_to_purchase_28d) as conversion,
                  sum(avg_price_28d) as price, sum(is_promo) as promo_days,
                  sum(review_count_90d) as reviews, sum(avg_rating_90d) as rating,
                  sum(trend_7d_vs_28d) as trend
           from marts.item_features group by item_id order by item_id""",
    )
    assert_same(d, p)


def test_new_features_and_training_labels_agree(builds: tuple[Paths, PostgresSettings]) -> None:
    d, p = both(
        builds,
        """select user_id, sum(top_category_share_28d) as top_share,
                  sum(category_entropy_28d) as entropy, sum(categories_28d) as categories,
                  sum(top_purchase_category_share_28d) as purchase_share
           from marts.user_features group by user_id order by user_id""",
    )
    assert d["categories"].sum() > 0
    assert_same(d, p)
    d, p = both(
        builds,
        """select item_id, count(sentiment) as scored, sum(sentiment) as sentiment
           from intermediate.int_review_sentiment group by item_id order by item_id""",
    )
    assert d["scored"].sum() > 0
    assert_same(d, p)
    d, p = both(
        builds,
        """select cast(cutoff_date as varchar) as cutoff, count(*) as users,
                  sum(purchased) as buyers, sum(purchases) as purchases, sum(spend) as spend,
                  sum(active_days_before) as active_days
           from ml.ml_user_propensity_labels group by 1 order by 1""",
    )
    assert_same(d, p)


def test_incremental_rebuild_on_postgres_changes_nothing(
    builds: tuple[Paths, PostgresSettings],
) -> None:
    paths, pg = builds
    sql = """select partition_date, count(*) as n, sum(event_id) as ids,
                    sum(case when rejection_reason is null then 0 else 1 end) as rejected
             from staging.base_shop__events group by 1 order by 1"""
    before = postgres(pg, sql)
    dbt_runner.run_dbt(
        ["build", "--select", "+reconciliation", "+stg_shop__events"], paths, target="postgres"
    )
    assert_same(postgres(pg, sql), before)
    loads = postgres(pg, "select count(distinct load_id) as n from audit.reconciliation")
    assert loads.iloc[0, 0] == 2


def test_an_optional_raw_table_the_home_lacks_is_dropped_on_reload(
    builds: tuple[Paths, PostgresSettings], tmp_path_factory: pytest.TempPathFactory
) -> None:
    paths, pg = builds
    reload = Paths(tmp_path_factory.mktemp("reload"))
    generate_shop(ShopConfig(users=20, items=3, days=10), reload)
    tables = "select table_name from information_schema.tables where table_schema = 'reload'"
    add_campaigns(reload)
    assert load_raw(reload, pg, schema="reload")["campaigns"] == 4
    assert "campaigns" in set(postgres(pg, tables)["table_name"])
    # Another dataset written into the same home (an ingest adapter without campaigns): the
    # old campaigns go with the data they came with, on disk and then in Postgres.
    write_raw(reload, {t: pq.read_table(reload.raw_table(t)).to_pandas() for t in RAW_TABLES})
    assert not any(reload.raw_table("campaigns").glob("*.parquet"))
    assert "campaigns" not in load_raw(reload, pg, schema="reload")
    assert set(postgres(pg, tables)["table_name"]) == set(RAW_TABLES)


def test_quality_gate_reads_the_postgres_build(builds: tuple[Paths, PostgresSettings]) -> None:
    """With the postgres target the gate checks the load dbt reconciled in Postgres: the same
    counts as the DuckDB build of the same raw files."""
    paths, pg = builds
    on_postgres = pipeline.newest_load(paths, "postgres")
    assert on_postgres == pipeline.newest_load(paths, "duckdb")
    assert {row[0] for row in on_postgres} >= set(RAW_TABLES)
    gate = pipeline.quality_gate(paths, max_rejected_share=1.0, target="postgres")
    assert gate == pipeline.quality_gate(paths, max_rejected_share=1.0, target="duckdb")


def test_quality_gate_on_an_unbuilt_postgres_database_says_what_to_run(
    builds: tuple[Paths, PostgresSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, pg = builds
    empty = PostgresSettings(pg.host, pg.port, pg.user, pg.password, f"{pg.database}_empty")
    create_database(empty, drop=True)
    try:
        monkeypatch.setenv("BASKETCAST_PG_DATABASE", empty.database)
        with pytest.raises(pipeline.QualityGateFailed, match="dbt build --target postgres"):
            pipeline.quality_gate(paths, target="postgres")
    finally:
        drop_database(empty)
