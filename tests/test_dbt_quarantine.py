"""Staging quarantines bad raw rows into audit.rejected_rows, and every load reconciles.

A tiny synthetic shop gets one extra raw file per table holding one row per rejection rule
(and repeats of good rows); the warehouse is built once on a real DuckDB file and every rule is
checked by the row it must catch: its reason, its natural key, its raw payload, and that staging
does not hold it. Then the incremental event load: rerunning gives identical tables, late rows
inside the lookback window are picked up, and rows older than the window make the
reconciliation test fail the build until those days are reloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_jobs import dbt_runner
from ml_jobs.config import Paths
from ml_jobs.generate import ShopConfig, generate_shop
from ml_jobs.warehouse import connect

SHOP = ShopConfig(users=40, items=8, days=20)
FUTURE = pd.Timestamp("2031-01-01 12:00", tz="UTC")
UNKNOWN_ITEM = 999_999
QUARANTINE = ["+reconciliation", "+stg_shop__events"]  # staging, quarantine, reconciliation
FEATURES = ("user_features", "item_features")


def raw(paths: Paths, table: str) -> pd.DataFrame:
    return pd.read_parquet(paths.raw_table(table))


def write_extra(paths: Paths, table: str, rows: pd.DataFrame, name: str) -> None:
    """Add `rows` to a raw table as one more Parquet file with the table's schema."""
    schema = pq.read_schema(next(paths.raw_table(table).glob("part-*.parquet")))
    frame = rows.reset_index(drop=True)
    pq.write_table(
        pa.Table.from_pandas(frame, schema=schema, preserve_index=False),
        paths.raw_table(table) / f"{name}.parquet",
    )


def export_files(paths: Paths, name: str) -> dict[str, bytes]:
    """The files of one feature export (exports/<name>/), by file name."""
    return {path.name: path.read_bytes() for path in paths.export_dir(name).iterdir()}


def variants(base: pd.Series, changes: list[dict[str, Any]]) -> pd.DataFrame:
    """One copy of `base` per dict of column changes."""
    return pd.DataFrame([{**base.to_dict(), **change} for change in changes])


# Each bad row: (column changes, expected rejection_reason). Ids are filled in below.
EVENT_RULES = [
    ({"event_id": None}, "missing event_id"),
    ({"user_id": None}, "missing user_id"),
    ({"event_ts": None}, "missing event_ts"),
    ({"event_ts": FUTURE}, "event_ts in the future"),
    ({"event_type": "teleport"}, "unknown event_type"),
    ({"event_type": "search", "item_id": None, "query_text": "  "}, "search without query"),
    ({"item_id": None}, "missing item_id"),
    ({"item_id": UNKNOWN_ITEM}, "unknown item_id"),
    ({"event_type": "purchase", "quantity": 0}, "quantity not positive"),
    ({"price": -1.0}, "negative price"),
]
LINE_RULES = [
    ({"order_id": None}, "missing order_id"),
    ({"item_id": None}, "missing item_id"),
    ({"user_id": None}, "missing user_id"),
    ({"order_ts": None}, "missing order_ts"),
    ({"order_ts": FUTURE}, "order_ts in the future"),
    ({"item_id": UNKNOWN_ITEM}, "unknown item_id"),
    ({"quantity": 0}, "quantity not positive"),
    ({"quantity": -2}, "quantity not positive"),
    ({"unit_price": -5.0}, "negative unit_price"),
    ({"status": "lost"}, "unknown status"),
]
OTHER_RULES = {
    "items": [
        ({"item_id": None}, "missing item_id"),
        ({"base_price": -1.0}, "negative base_price"),
    ],
    "reviews": [
        ({"review_id": None}, "missing review_id"),
        ({"item_id": UNKNOWN_ITEM}, "unknown item_id"),
        ({"review_ts": FUTURE}, "review_ts in the future"),
        ({"rating": 6}, "rating outside 1-5"),
        ({"rating": None}, "rating outside 1-5"),
    ],
    "inventory_snapshots": [
        ({"item_id": UNKNOWN_ITEM}, "unknown item_id"),
        ({"snapshot_date": None}, "missing snapshot_date"),
        ({"on_hand": -1}, "negative on_hand"),
        ({"on_order": -1}, "negative on_order"),
    ],
    "promotions": [
        ({"item_id": UNKNOWN_ITEM}, "unknown item_id"),
        ({"end_date": pd.Timestamp("2025-01-01").date()}, "ends before it starts"),
        ({"discount_pct": 150.0}, "discount_pct outside 0-100"),
    ],
}
# Natural-key columns that each table's extra rows get fresh values in, so they collide with
# nothing but the repeats we add on purpose.
FRESH_KEYS = {"items": "item_id", "reviews": "review_id"}
DUPLICATE = {
    "items": "duplicate item_id",
    "reviews": "duplicate review_id",
    "inventory_snapshots": "duplicate snapshot",
    "promotions": "duplicate promotion",
}


def add_bad_rows(paths: Paths) -> dict[str, list[tuple[Any, str]]]:
    """Write the bad rows; returns per table the (natural key, reason) pairs expected."""
    expected: dict[str, list[tuple[Any, str]]] = {}

    events = raw(paths, "events")
    view = events[events["event_type"] == "view"].iloc[0]
    next_id = int(events["event_id"].max()) + 1
    rows = variants(view, [change for change, _ in EVENT_RULES])
    rows["event_id"] = [
        None if change.get("event_id", 0) is None else next_id + n
        for n, (change, _) in enumerate(EVENT_RULES)
    ]
    repeated = events.iloc[[3, 3]]  # two repeats of a good event: the original is kept
    write_extra(paths, "events", pd.concat([rows, repeated]), "part-bad")
    expected["events"] = [
        (None if e is None or pd.isna(e) else str(int(e)), reason)
        for e, (_, reason) in zip(rows["event_id"], EVENT_RULES, strict=True)
    ] + [(str(int(events.iloc[3]["event_id"])), "duplicate event_id")] * 2

    lines = raw(paths, "order_lines")
    line = lines.iloc[0]
    next_order = int(lines["order_id"].max()) + 1
    rows = variants(line, [change for change, _ in LINE_RULES])
    rows["order_id"] = [
        None if change.get("order_id", 0) is None else next_order + n
        for n, (change, _) in enumerate(LINE_RULES)
    ]
    line_2 = lines.iloc[1]
    write_extra(paths, "order_lines", pd.concat([rows, lines.iloc[[1]]]), "part-bad")
    expected["order_lines"] = [
        (f"{text(o)}/{text(i)}", reason)
        for o, i, (_, reason) in zip(rows["order_id"], rows["item_id"], LINE_RULES, strict=True)
    ] + [(f"{text(line_2['order_id'])}/{text(line_2['item_id'])}", "duplicate order line")]

    for table, rules in OTHER_RULES.items():
        frame = raw(paths, table)
        rows = variants(frame.iloc[0], [change for change, _ in rules])
        key = FRESH_KEYS.get(table)
        if key:
            fresh = int(frame[key].max()) + 1 + pd.RangeIndex(len(rules))
            rows[key] = [
                None if change.get(key, 0) is None else int(value)
                for value, (change, _) in zip(fresh, rules, strict=True)
            ]
        write_extra(paths, table, pd.concat([rows, frame.iloc[[0]]]), "part-bad")
        expected[table] = [(None, reason) for _, reason in rules] + [(None, DUPLICATE[table])]
    return expected


def text(value: object) -> str:
    """An id as the warehouse writes it in a natural key ('' when missing)."""
    return "" if value is None or pd.isna(value) else str(int(value))


def query(paths: Paths, sql: str) -> list[tuple[Any, ...]]:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


def frame(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def dbt_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        # Keep this build's target/ and logs/ apart from builds running in the checkout.
        patch.setenv("DBT_TARGET_PATH", str(folder / "target"))
        patch.setenv("DBT_LOG_PATH", str(folder / "logs"))
        yield folder


@pytest.fixture(scope="module")
def shop(module_home: Paths, dbt_files: Path) -> tuple[Paths, dict[str, list[tuple[Any, str]]]]:
    generate_shop(SHOP, module_home)
    expected = add_bad_rows(module_home)
    dbt_runner.build_warehouse(module_home)
    return module_home, expected


def test_every_rule_quarantines_its_row(shop: tuple[Paths, dict]) -> None:
    paths, expected = shop
    rejected = frame(
        paths,
        "select source_table, natural_key, rejection_reason, raw_payload from audit.rejected_rows",
    )
    for table, rows in expected.items():
        mine = rejected[rejected["source_table"] == table]
        got = sorted(mine["rejection_reason"])
        assert got == sorted(reason for _, reason in rows), table
        if table in ("events", "order_lines"):
            keys = mine["natural_key"].where(mine["natural_key"].notna(), None)
            pairs = list(zip(keys, mine["rejection_reason"], strict=True))
            assert sorted(pairs, key=str) == sorted(rows, key=str), table
    future = rejected[rejected["rejection_reason"] == "event_ts in the future"].iloc[0]
    payload = json.loads(future["raw_payload"])
    assert set(payload) == {
        "event_id", "user_id", "item_id", "event_type", "event_ts", "session_id", "quantity",
        "price", "query_text",
    }  # fmt: skip
    assert payload["event_ts"].startswith("2031-01-01")
    assert payload["event_type"] == "view"


def test_staging_holds_only_clean_rows(shop: tuple[Paths, dict]) -> None:
    paths, _ = shop
    events = raw(paths, "events")
    stg = frame(paths, "select event_id, event_type, price from staging.stg_shop__events")
    assert stg["event_id"].is_unique
    assert len(stg) == events["event_id"].dropna().nunique() - (len(EVENT_RULES) - 1)
    assert (stg["price"].dropna() >= 0).all()
    assert UNKNOWN_ITEM not in set(
        query(paths, "select distinct item_id from staging.stg_shop__order_lines")[0]
    )
    # The repeated event keeps its first copy, with the original values.
    original = events.iloc[3]
    kept = stg[stg["event_id"] == original["event_id"]]
    assert len(kept) == 1 and kept.iloc[0]["event_type"] == original["event_type"]


def test_cancelled_and_returned_lines_are_kept_and_flagged(shop: tuple[Paths, dict]) -> None:
    paths, _ = shop
    lines = raw(paths, "order_lines").drop_duplicates(["order_id", "item_id"])
    lines = lines.dropna(subset=["order_id"])
    flags = frame(
        paths,
        """select status, count(*) as n, sum(case when is_demand then 1 else 0 end) as demand,
                  sum(case when is_returned then 1 else 0 end) as returned
           from staging.stg_shop__order_lines group by status""",
    ).set_index("status")
    assert {"completed", "cancelled", "returned"} <= set(flags.index)
    assert flags.loc["cancelled", "demand"] == 0
    assert flags.loc["returned", "demand"] == flags.loc["returned", "returned"] > 0
    assert flags.loc["completed", "returned"] == 0
    assert flags.loc["returned", "n"] == (lines["status"] == "returned").sum()


def test_reconciliation_adds_up(shop: tuple[Paths, dict]) -> None:
    paths, expected = shop
    rec = frame(paths, "select * from audit.reconciliation").set_index("source_table")
    # The six raw tables and the optional campaigns (no file here: an empty load).
    assert len(rec) == 7 and rec["load_id"].nunique() == 1
    assert rec.loc["campaigns", "rows_in"] == 0
    for table, rows in expected.items():
        row = rec.loc[table]
        assert row.rows_in == len(raw(paths, table))
        assert row.rows_rejected == len(rows)
        assert row.rows_in == row.rows_clean + row.rows_rejected
        assert row.rows_duplicate == sum(reason.startswith("duplicate") for _, reason in rows)


def late_event(paths: Paths, day: datetime, event_id: int) -> pd.DataFrame:
    events = raw(paths, "events")
    view = events[events["event_type"] == "view"].iloc[0]
    return variants(view, [{"event_id": event_id, "event_ts": pd.Timestamp(day)}])


def test_incremental_events(shop: tuple[Paths, dict]) -> None:
    """Rerun → identical; a late row inside the lookback is picked up; one older than the
    lookback fails reconciliation until `reload_from` reloads its day."""
    paths, _ = shop
    snapshot = "select * exclude (loaded_at) from staging.base_shop__events order by all"
    before = frame(paths, snapshot)
    demand = frame(paths, "select * from marts.fct_item_daily_demand order by all")
    exports = {name: export_files(paths, name) for name in FEATURES}
    dbt_runner.build_warehouse(paths)
    pd.testing.assert_frame_equal(frame(paths, snapshot), before)
    pd.testing.assert_frame_equal(
        frame(paths, "select * from marts.fct_item_daily_demand order by all"), demand
    )
    for name, files in exports.items():  # recomputed newest snapshots: the same files
        assert export_files(paths, name) == files, name
    assert query(paths, "select count(distinct load_id) from audit.reconciliation")[0][0] == 2

    last_day = before.loc[before["rejection_reason"].isna(), "event_date"].max()
    next_id = int(raw(paths, "events")["event_id"].max()) + 100
    recent = datetime.combine(last_day, datetime.min.time(), UTC).replace(hour=9)
    write_extra(paths, "events", late_event(paths, recent, next_id), "part-late-1")
    dbt_runner.run_dbt(["build", "--select", *QUARANTINE], paths)
    kept = query(paths, f"select count(*) from staging.stg_shop__events where event_id = {next_id}")
    assert kept[0][0] == 1

    old = recent.replace(day=1) if recent.day > 10 else recent - pd.Timedelta(days=10)
    write_extra(paths, "events", late_event(paths, old, next_id + 1), "part-late-2")
    with pytest.raises(dbt_runner.DbtError, match="reconciles"):
        dbt_runner.run_dbt(["build", "--select", *QUARANTINE], paths)
    dbt_runner.run_dbt(
        ["build", "--select", *QUARANTINE], paths, variables={"reload_from": str(old.date())}
    )
    rec = frame(
        paths,
        """select * from audit.reconciliation
           where loaded_at = (select max(loaded_at) from audit.reconciliation)
             and source_table = 'events'""",
    ).iloc[0]
    assert rec.rows_in == rec.rows_clean + rec.rows_rejected == len(raw(paths, "events"))


def test_exports_rewrite_only_recent_months(shop: tuple[Paths, dict]) -> None:
    """A run rewrites the months from its reload window on and leaves older files alone; a
    full refresh empties the folder first, so files of months without rows are gone."""
    paths, _ = shop
    folder = paths.export_dir("user_features")
    months = sorted(folder.glob("????-??.parquet"))
    stale = folder / "1999-01.parquet"  # a month before the data: no snapshot rows
    stale.write_bytes(months[-1].read_bytes())
    empty = folder / "empty_0.parquet"
    empty.unlink()  # gone from the export, back after the full refresh
    before = export_files(paths, "user_features")

    dbt_runner.run_dbt(["run", "--select", "user_features"], paths)
    assert export_files(paths, "user_features") == before  # only the newest month, unchanged

    dbt_runner.run_dbt(["run", "--select", "user_features", "--full-refresh"], paths)
    after = export_files(paths, "user_features")
    assert sorted(after) == sorted({*before, empty.name} - {stale.name})
    assert pq.read_metadata(empty).num_rows == 0
    for month in months:
        assert after[month.name] == before[month.name]
    exported = pq.read_table(folder).sort_by(
        [("user_id", "ascending"), ("feature_ts", "ascending")]
    )
    stored = frame(paths, "select * from marts.user_features order by user_id, feature_ts")
    pd.testing.assert_frame_equal(exported.to_pandas(), stored, check_dtype=False)


def test_docs_generate_describes_every_model(shop: tuple[Paths, dict], dbt_files: Path) -> None:
    paths, _ = shop
    dbt_runner.run_dbt(["docs", "generate"], paths)
    catalog = json.loads((dbt_files / "target" / "catalog.json").read_text())
    manifest = json.loads((dbt_files / "target" / "manifest.json").read_text())
    assert "model.basketcast.rejected_rows" in catalog["nodes"]
    mine = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "/ml/" not in node["original_file_path"]
    ]
    assert len(mine) > 20
    for node in mine:
        assert node["description"].strip(), node["name"]
        for column in node["columns"].values():
            assert column["description"].strip(), f"{node['name']}.{column['name']}"
