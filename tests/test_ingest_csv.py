"""Transactions CSV ingest: a shop file with bad rows through the mapping, the quarantine,
the raw contract, dbt and the demand job; mapping and read errors name what to fix.

Real parts only: real dbt on DuckDB, the real demand job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from ingest_support import (
    DBT_SELECT,
    JOB,
    MAPPING,
    QUIET,
    assert_forecast_invariants,
    raw_df,
    use_home,
    warehouse_count,
)

from ml_jobs import dbt_runner
from ml_jobs.cli import main as cli_main
from ml_jobs.config import Paths
from ml_jobs.demand import run_demand_forecast
from ml_jobs.ingest.csv_ingest import CsvReadError, ingest_csv
from ml_jobs.ingest.csv_mapping import MappingError, load_mapping, parse_mapping
from ml_jobs.ingest.quarantine import quarantine_path
from ml_jobs.ingest.raw_output import stable_id

# --- CSV -------------------------------------------------------------------------------------

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Category"
BAD_ROWS = {  # line text → reason expected in the quarantine
    "536901,A1,Mug,x,01/02/2024 10:00,2.5,100,Home": "quantity is not a whole number",
    "536902,A1,Mug,0,01/02/2024 10:00,2.5,100,Home": "quantity is zero",
    "536903,A1,Mug,-2,01/02/2024 10:00,2.5,100,Home": (
        "negative quantity on a row that is not a cancellation"
    ),
    "536904,A1,Mug,2,2024-02-01 10:00,2.5,100,Home": (
        "order_ts does not match format '%d/%m/%Y %H:%M'"
    ),
    "536905,A1,Mug,2,01/02/2024 10:00,-2.5,100,Home": "negative unit_price",
    "536906,A1,Mug,2,01/02/2024 10:00,2.5,,Home": "missing user_id",
    "536907,A1,Mug,2,01/02/2024 10:00,2.5,abc,Home": "user_id is not an integer",
    "536908,A1,Mug,2,01/02/2024 10:00,2.5": "expected 8 fields, got 6",
    "536909,,Mug,2,01/02/2024 10:00,2.5,100,Home": "missing item_id",
    "536910,A1,Mug,2,01/02/2099 10:00,2.5,100,Home": "order_ts in the future",
}


def _write_shop_csv(folder: Path, days: int = 120, seed: int = 3) -> tuple[list[Path], dict]:
    """Two CSV files of daily sales of 4 items (weekly pattern), bad rows and one cancellation."""
    rng = np.random.default_rng(seed)
    start = dt.date(2024, 1, 1)
    good: list[str] = []
    invoice = 100000
    for day in range(days):
        date = start + dt.timedelta(days=day)
        for item, (code, cat, rate) in enumerate(
            [("A1", "Home", 4.0), ("B2", "Home", 2.0), ("C3", "Toys", 1.0), ("D4", "Toys", 0.5)]
        ):
            weekly = 1.5 if date.weekday() >= 5 else 1.0
            for _ in range(rng.poisson(rate * weekly)):
                invoice += 1
                qty = int(rng.integers(1, 4))
                user = int(rng.integers(1, 60))
                stamp = f"{date:%d/%m/%Y} {9 + item}:{rng.integers(0, 60):02d}"
                good.append(f"{invoice},{code},Item {code},{qty},{stamp},{1.5 + item},{user},{cat}")
    # the same invoice and item twice → one merged order line; then its cancellation
    last = f"{start + dt.timedelta(days=days - 1):%d/%m/%Y}"
    good.append(f"900001,A1,Item A1,2,{last} 18:00,1.5,7,Home")
    good.append(f"900001,A1,Item A1,1,{last} 18:00,1.5,7,Home")
    good.append(f"C900001,A1,Item A1,-1,{last} 19:00,1.5,7,Home")
    half = len(good) // 2
    first = folder / "part1.csv"
    second = folder / "part2.csv"
    first.write_text("\n".join([HEADER, *good[:half], *BAD_ROWS]) + "\n", encoding="utf-8")
    second.write_text("\n".join([HEADER, *good[half:]]) + "\n", encoding="utf-8")
    return [first, second], {"good": len(good), "bad": len(BAD_ROWS)}


@pytest.fixture(scope="module")
def csv_home(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("csv")
    paths = Paths(folder / "home")
    files, counts = _write_shop_csv(folder)
    previous = os.environ.get("BASKETCAST_HOME")
    use_home(paths)
    summary = ingest_csv(paths, load_mapping(MAPPING), files)
    yield paths, summary, counts, files
    if previous is None:
        os.environ.pop("BASKETCAST_HOME", None)
    else:
        os.environ["BASKETCAST_HOME"] = previous


def test_csv_rows_in_equal_rows_written_plus_rejected(csv_home) -> None:
    paths, summary, counts, files = csv_home
    assert summary.rows_in == counts["good"] + counts["bad"]
    assert summary.rows_accepted + summary.rows_rejected == summary.rows_in
    assert summary.rows_rejected == counts["bad"]
    assert summary.merged == 1  # the repeated invoice line
    assert summary.rows["order_lines"] == summary.rows_accepted - summary.merged
    assert summary.rows["events"] == summary.rows["order_lines"] - 1  # not the cancellation

    rejected = pq.read_table(quarantine_path(paths, "online_retail")).to_pandas()
    by_line = dict(zip(rejected["line_number"], rejected["reason"], strict=True))
    first_bad_line = 2 + sum(1 for _ in files[0].read_text().splitlines()[1:]) - len(BAD_ROWS)
    assert by_line == {first_bad_line + i: r for i, r in enumerate(BAD_ROWS.values())}
    assert set(rejected["file"]) == {str(files[0])}
    payload = json.loads(
        rejected.loc[rejected["reason"] == "missing user_id", "raw_payload"].iloc[0]
    )
    assert payload["InvoiceNo"] == "536906" and payload["CustomerID"] == ""

    lines = raw_df(paths, "order_lines")
    cancelled = lines[lines["status"] == "cancelled"]
    assert len(cancelled) == 1 and cancelled["quantity"].iloc[0] == 1
    assert set(lines["item_id"]) == {stable_id(c) for c in ("A1", "B2", "C3", "D4")}
    items = raw_df(paths, "items").set_index("item_id")
    assert items.loc[stable_id("C3"), "category_id"] == stable_id("Toys")
    assert items.loc[stable_id("A1"), "title"] == "Item A1"


def test_csv_through_dbt_and_the_demand_job(csv_home) -> None:
    paths, summary, _, _ = csv_home
    dbt_runner.run_dbt(DBT_SELECT, paths)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        units, items, days = con.execute(
            "select sum(units_sold), count(distinct item_id), count(distinct demand_date) "
            "from marts.fct_item_daily_demand"
        ).fetchone()
    finally:
        con.close()
    lines = raw_df(paths, "order_lines")
    assert units == lines.loc[lines["status"] != "cancelled", "quantity"].sum()
    assert (items, days) == (4, 120)
    # no raw campaigns folder: the campaign models build empty
    assert not paths.raw_table("campaigns").exists()
    assert warehouse_count(paths, "marts.fct_user_campaigns") == 0

    result = run_demand_forecast(paths, JOB, console=QUIET)
    assert all(run.status == "succeeded" for run in result.runs)
    assert result.as_of_date == dt.date(2024, 4, 29)
    assert_forecast_invariants(paths, 4, JOB.horizon)


def test_unreadable_files_fail_with_the_file_named(tmp_path: Path) -> None:
    mapping = load_mapping(MAPPING)
    paths = Paths(tmp_path / "home")
    missing = tmp_path / "nope.csv"
    with pytest.raises(CsvReadError, match=r"nope\.csv: file not found"):
        ingest_csv(paths, mapping, [missing])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CsvReadError, match=r"empty\.csv: file is empty"):
        ingest_csv(paths, mapping, [empty])
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("InvoiceNo,StockCode\n1,2\n")
    with pytest.raises(CsvReadError, match=r"wrong\.csv: header lacks \['CustomerID'"):
        ingest_csv(paths, mapping, [wrong])
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "\n1,A1,Caf\xe9,1,01/02/2024 10:00,1,1,Home\n").encode("latin-1"))
    with pytest.raises(CsvReadError, match=r"latin\.csv: line 2 is not utf-8 text"):
        ingest_csv(paths, mapping, [latin])
    assert not paths.raw.exists()  # nothing written when a file cannot be read


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colums": {}}, r"unknown keys \['colums'\]"),
        ({"columns": {"order_id": "a"}}, r"columns must name the CSV header of \['user_id'"),
        ({"ids": {"item_id": "md5"}}, r"ids.item_id must be one of \('integer', 'hash'\)"),
        ({"timestamp": {"format": "%d/%m/%Y", "timezone": "Mars/Base"}}, "not an IANA zone"),
        ({"source": "my shop"}, "must use only letters"),
        ({"cancellation": {"column": "InvoiceNo"}}, "needs `starts_with` or `equals`"),
    ],
)
def test_mapping_errors_name_the_key_to_fix(change: dict, message: str) -> None:
    import yaml

    spec = yaml.safe_load(MAPPING.read_text())
    spec.update(change)
    with pytest.raises(MappingError, match=message):
        parse_mapping(spec, origin="m.yml")


def test_cli_ingest_csv_prints_counts(
    csv_home, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, counts, files = csv_home
    home = tmp_path / "clihome"
    monkeypatch.setenv("BASKETCAST_HOME", str(home))  # the CLI's --home sets it; undone after
    code = cli_main(
        ["--home", str(home), "ingest", "csv", "--mapping", str(MAPPING), *map(str, files)]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert f"rows read {counts['good'] + counts['bad']:,}" in err
    assert f"rejected {counts['bad']}" in err
    assert cli_main(["--home", str(home), "ingest", "csv", "--mapping", "nope.yml", "x.csv"]) == 1


def test_timestamps_read_in_the_mapping_zone_and_stored_in_utc() -> None:
    import pandas as pd

    from ml_jobs.ingest.validate import parse_timestamp

    text = pd.Series(
        ["2024-06-01 12:00", "2024-06-01T12:00+02:00", "2024-03-31 01:30", "junk", ""],
        dtype="string",
    )
    values, reasons = parse_timestamp(text, "order_ts", "iso", "Europe/London")
    assert values[:2].tolist() == [
        pd.Timestamp("2024-06-01 11:00", tz="UTC"),  # BST wall time
        pd.Timestamp("2024-06-01 10:00", tz="UTC"),  # its own offset wins
    ]
    assert reasons[2:].tolist() == [
        "order_ts does not exist or is ambiguous in Europe/London",  # the spring-forward gap
        "order_ts does not match format 'iso'",
        "missing order_ts",
    ]
