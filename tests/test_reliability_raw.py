"""Bad raw Parquet, property-based: staging quarantines every bad row, and loads reconcile.

A tiny synthetic shop gets one extra raw events file drawn by Hypothesis: good rows with odd
text (any Unicode, NUL and control characters, very long strings) and bad ones (null keys,
future timestamps, unknown event types and item ids, non-positive quantities, negative
prices, searches without a query, repeats of existing events). Each example is one real dbt
build of staging and the quarantine (full refresh, so examples do not see each other), then:
every bad row is in audit.rejected_rows with the reason its rule gives, every good row is in
staging, and rows in = clean + rejected for every raw table. Files dbt cannot read at all (not
Parquet, wrong column types, missing columns) fail the build with the file and the problem
named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ml_jobs import dbt_runner
from ml_jobs.config import Paths
from ml_jobs.generate import ShopConfig, generate_shop
from ml_jobs.warehouse import connect

SHOP = ShopConfig(users=30, items=6, days=15)
QUARANTINE = ["build", "--select", "+reconciliation", "+stg_shop__events", "--full-refresh"]
FUZZ_FILE = "part-fuzz.parquet"
EVENT_TYPES = {"view", "cart", "purchase", "search", "favorite"}
FIRST_FRESH_ID = 10**12

ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
LONG_TEXT = st.tuples(st.text(min_size=1, max_size=3), st.integers(1, 50_000)).map(
    lambda t: t[0] * t[1]
)
FUTURE = st.datetimes(datetime(2031, 1, 1), datetime(2200, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)
NOT_A_TYPE = st.one_of(st.none(), ANY_TEXT).filter(
    lambda t: t is None or t.strip().lower() not in EVENT_TYPES
)

# kind -> (strategy of column changes, expected rejection_reason; None: a good row)
MUTATIONS: dict[str, tuple[st.SearchStrategy[dict[str, Any]], str | None]] = {
    "good": (
        st.fixed_dictionaries({"session_id": st.one_of(ANY_TEXT, LONG_TEXT)}),
        None,
    ),
    "good_search": (
        st.fixed_dictionaries(
            {
                "event_type": st.just(" Search "),
                "item_id": st.none(),
                "query_text": st.one_of(ANY_TEXT, LONG_TEXT).filter(lambda t: t.strip(" ")),
            }
        ),
        None,
    ),
    "null_id": (st.just({"event_id": None}), "missing event_id"),
    "null_user": (st.just({"user_id": None}), "missing user_id"),
    "null_ts": (st.just({"event_ts": None}), "missing event_ts"),
    "future": (st.fixed_dictionaries({"event_ts": FUTURE}), "event_ts in the future"),
    "event_type": (st.fixed_dictionaries({"event_type": NOT_A_TYPE}), "unknown event_type"),
    "no_query": (
        st.fixed_dictionaries(
            {
                "event_type": st.just("search"),
                "item_id": st.none(),
                "query_text": st.sampled_from([None, "", "   "]),
            }
        ),
        "search without query",
    ),
    "null_item": (st.just({"item_id": None}), "missing item_id"),
    "unknown_item": (
        st.fixed_dictionaries({"item_id": st.integers(10**9, 2**62)}),
        "unknown item_id",
    ),
    "quantity": (
        st.fixed_dictionaries(
            {"event_type": st.just("purchase"), "quantity": st.integers(-(2**31), 0)}
        ),
        "quantity not positive",
    ),
    "price": (
        st.fixed_dictionaries(
            {"price": st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False)}
        ),
        "negative price",
    ),
}


@st.composite
def event_batches(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    every = sorted(MUTATIONS) + ["repeat"]
    # Each kind at least once (so even the simplest example covers every rule), then more.
    kinds = draw(st.permutations(every + draw(st.lists(st.sampled_from(every), max_size=20))))
    return [(kind, {} if kind == "repeat" else draw(MUTATIONS[kind][0])) for kind in kinds]


@pytest.fixture(scope="module")
def shop(module_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    folder = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(folder / "target"))
        patch.setenv("DBT_LOG_PATH", str(folder / "logs"))
        generate_shop(SHOP, module_home)
        yield module_home


def events_of(paths: Paths) -> pa.Table:
    return pq.read_table(paths.raw_table("events") / "part-00000.parquet")


def query(paths: Paths, sql: str) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql).df()


def write_fuzz(paths: Paths, batch: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The batch as raw event rows (fresh ids; repeats copy an existing event) in one file."""
    base = events_of(paths)
    existing = base.to_pylist()
    view = next(row for row in existing if row["event_type"] == "view")
    rows = []
    for n, (kind, changes) in enumerate(batch):
        if kind == "repeat":
            rows.append(existing[n % len(existing)])
        else:
            rows.append({**view, "event_id": FIRST_FRESH_ID + n, **changes})
    table = pa.Table.from_pylist(rows, schema=base.schema) if rows else base.schema.empty_table()
    pq.write_table(table, paths.raw_table("events") / FUZZ_FILE)
    return rows


@settings(
    max_examples=2,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a dbt build
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=event_batches())
def test_every_bad_raw_event_is_quarantined_with_its_reason(
    shop: Paths, batch: list[tuple[str, dict[str, Any]]]
) -> None:
    rows = write_fuzz(shop, batch)
    dbt_runner.run_dbt(QUARANTINE, shop)

    rejected = query(shop, "select natural_key, rejection_reason from audit.rejected_rows")
    keyed = rejected[rejected["natural_key"].notna()]
    reason_of = dict(zip(keyed["natural_key"], keyed["rejection_reason"], strict=True))
    clean = set(query(shop, "select event_id from staging.stg_shop__events")["event_id"])
    expected_missing_ids = 0
    for row, (kind, _) in zip(rows, batch, strict=True):
        if kind == "repeat":
            assert row["event_id"] in clean  # the first copy stays
            continue
        reason = MUTATIONS[kind][1]
        if row["event_id"] is None:
            expected_missing_ids += 1
        elif reason is None:
            assert row["event_id"] in clean, kind
        else:
            assert reason_of.get(str(row["event_id"])) == reason, (kind, row)
            assert row["event_id"] not in clean
    counts = Counter(rejected["rejection_reason"])
    assert counts["missing event_id"] == expected_missing_ids
    assert counts["duplicate event_id"] == sum(kind == "repeat" for kind, _ in batch)
    bad = [kind for kind, _ in batch if kind == "repeat" or MUTATIONS[kind][1] is not None]
    assert len(rejected) == len(bad)

    # Rows in = clean + rejected, for every raw table, and rows in = what the files hold.
    rec = query(
        shop,
        """select * from audit.reconciliation
           where loaded_at = (select max(loaded_at) from audit.reconciliation)""",
    ).set_index("source_table")
    assert len(rec) == 7  # the six raw tables and the optional campaigns (none here)
    assert rec.loc["campaigns", "rows_in"] == 0
    assert (rec["rows_in"] == rec["rows_clean"] + rec["rows_rejected"]).all()
    assert rec.loc["events", "rows_in"] == events_of(shop).num_rows + len(rows)
    # Odd text arrives as written (NUL, control characters and long strings included).
    search = [r for r, (kind, _) in zip(rows, batch, strict=True) if kind == "good_search"]
    if search:
        texts = query(
            shop,
            f"""select event_id, query_text from staging.stg_shop__events
                where event_id in ({", ".join(str(r["event_id"]) for r in search)})""",
        ).set_index("event_id")["query_text"]
        for r in search:
            assert texts[r["event_id"]] == r["query_text"].strip(" ")


def _wrong_types(paths: Paths) -> None:
    frame = events_of(paths).to_pandas().head(3).astype({"event_id": str})
    frame.loc[0, "event_id"] = "not-a-number"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), _target(paths))


def _missing_column(paths: Paths) -> None:
    pq.write_table(events_of(paths).slice(0, 3).drop(["price"]), _target(paths))


def _not_parquet(paths: Paths) -> None:
    _target(paths).write_bytes(b"event_id,user_id\n1,2\n")


def _target(paths: Paths) -> Path:
    return paths.raw_table("events") / "part-broken.parquet"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_wrong_types, 'column "event_id" has type VARCHAR'),
        (_missing_column, 'column "price" was read from the original file'),
        (_not_parquet, "No magic bytes found at end of file"),
    ],
)
def test_an_unreadable_raw_file_fails_the_build_naming_file_and_problem(
    shop: Paths, damage, problem: str
) -> None:
    (shop.raw_table("events") / FUZZ_FILE).unlink(missing_ok=True)
    damage(shop)
    try:
        with pytest.raises(dbt_runner.DbtError) as caught:
            dbt_runner.run_dbt(["run", "--select", "+base_shop__events", "--full-refresh"], shop)
    finally:
        _target(shop).unlink()
    message = str(caught.value)
    assert "part-broken.parquet" in message and problem in message, message
    assert "model.basketcast.base_shop__events" in message
