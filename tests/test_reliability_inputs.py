"""Bad input, property-based: CSV ingest never loses a row, and unreadable files are named.

Hypothesis writes transactions CSV files mixing good rows with bad ones (blank fields, wrong
types, out-of-range numbers, future or malformed timestamps, ragged lines, duplicates, odd
unicode, very long strings, quoted newlines and delimiters) and checks, for every example:
rows in = accepted + rejected, every bad row is in the quarantine with a reason naming the
field at fault and the row as it was read, every good row's units reach the raw layer. Files
that cannot be read at all (invalid UTF-8, NUL bytes, no header, missing columns) stop the
ingest before anything is written, with the file and the problem in the message. The same
holds with salted user-id hashing on, and then no raw user id is stored anywhere.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_jobs.config import Paths
from ml_jobs.ingest.csv_ingest import CsvReadError, ingest_csv
from ml_jobs.ingest.csv_mapping import parse_mapping
from ml_jobs.ingest.privacy import SALT_ENV, PrivacyConfigError, UserIdHasher
from ml_jobs.ingest.quarantine import quarantine_path

HEADER = ["order", "customer", "sku", "ts", "qty", "price", "title"]
FIELD_OF = {
    "order": "order_id",
    "customer": "user_id",
    "sku": "item_id",
    "ts": "order_ts",
    "qty": "quantity",
    "price": "unit_price",
}
MAPPING = parse_mapping(
    {
        "source": "fuzz",
        "columns": {**{field: column for column, field in FIELD_OF.items()}, "title": "title"},
        "ids": {"item_id": "hash"},
    },
    origin="fuzz.yml",
)
SALT = "a-test-salt-of-enough-length"
FUZZ = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text anywhere in the Unicode range that UTF-8 can carry (no lone surrogates): NUL, control
# characters, right-to-left marks, quotes, delimiters and newlines included.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)))
LETTERS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzé€"), min_size=1, max_size=12)
# Very long strings: a short piece repeated, up to 400k characters (csv's default field limit
# is 128 KiB).
LONG_TEXT = st.tuples(st.text(min_size=1, max_size=4), st.integers(1, 100_000)).map(
    lambda t: t[0] * t[1]
)
PAST = st.datetimes(datetime(2019, 1, 1), datetime(2025, 12, 31)).map(
    lambda t: t.replace(microsecond=0).isoformat()
)


@dataclass(frozen=True)
class Row:
    cells: list[str]
    bad_field: str | None  # contract field the rejection reason must name; None: a good row

    @property
    def good(self) -> bool:
        return self.bad_field is None


@st.composite
def good_cells(draw: st.DrawFn) -> list[str]:
    pad = draw(st.sampled_from(["", " ", "  "]))
    return [
        f"{pad}{draw(st.integers(1, 10**12))}",
        str(draw(st.integers(1, 10**9))),
        draw(ANY_TEXT.map(lambda t: f"{t}s{t}")),  # any text around a letter: ids are hashed
        draw(PAST),
        str(draw(st.integers(1, 10_000))),
        draw(st.sampled_from(["0", "0.5", "19.99", "1e2", " 7 "])),
        draw(st.one_of(ANY_TEXT, LONG_TEXT)),
    ]


# (column, bad value, contract field the reason must name)
BAD_VALUES = {
    "order": [st.just(""), LETTERS, st.just("1.5"), st.just(str(2**70)), st.just("nan")],
    "customer": [st.just("  "), LETTERS, st.just("-0.5"), st.just("inf")],
    "sku": [st.just(""), st.just("   ")],
    "ts": [
        st.just(""),
        LETTERS,
        st.just("31/12/2020 10:00"),
        st.just("2024-02-30T10:00:00"),
        st.datetimes(datetime(2101, 1, 1), datetime(2999, 1, 1)).map(lambda t: t.isoformat()),
    ],
    "qty": [st.just(""), LETTERS, st.just("0"), st.just("-3"), st.just("2.5"), st.just("inf")],
    "price": [st.just(""), LETTERS, st.just("-0.01"), st.just("nan"), st.just("-inf")],
}


@st.composite
def rows(draw: st.DrawFn) -> Row:
    cells = draw(good_cells())
    kind = draw(st.sampled_from(["good", "good", "bad", "ragged"]))
    if kind == "good":
        return Row(cells, None)
    if kind == "ragged":
        extra = draw(st.booleans())
        return Row(cells + ["surplus"] if extra else cells[:-2], "fields")
    column = draw(st.sampled_from(sorted(BAD_VALUES)))
    cells[HEADER.index(column)] = draw(st.one_of(BAD_VALUES[column]))
    return Row(cells, FIELD_OF[column])


@st.composite
def batches(draw: st.DrawFn) -> list[list[Row]]:
    """One to three files of rows; some good rows repeated (the same order line twice)."""
    files = draw(st.lists(st.lists(rows(), max_size=25), min_size=1, max_size=3))
    every = [row for rows_ in files for row in rows_ if row.good]
    if every and draw(st.booleans()):
        files[-1].append(draw(st.sampled_from(every)))
    return files


def write_csv(path: Path, rows_: list[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(row.cells for row in rows_)


def quarantined(paths: Paths) -> pd.DataFrame:
    return pq.read_table(quarantine_path(paths, "fuzz")).to_pandas()


def raw(paths: Paths, table: str) -> pd.DataFrame:
    return pd.read_parquet(paths.raw_table(table))


def ingest_batch(tmp_path: Path, files: list[list[Row]], mapping=MAPPING):
    folder = Path(tmp_path)
    for old in folder.glob("*.csv"):
        old.unlink()
    paths = Paths(folder / "home")
    names = []
    for n, rows_ in enumerate(files):
        names.append(folder / f"part-{n}.csv")
        write_csv(names[-1], rows_)
    return paths, names, ingest_csv(paths, mapping, names)


@FUZZ
@given(files=batches())
def test_every_csv_row_is_accepted_or_quarantined_with_its_reason(
    files: list[list[Row]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    every = [row for rows_ in files for row in rows_]
    good = [row for row in every if row.good]
    bad = [row for row in every if not row.good]
    if not good:  # nothing to ingest: refused, the raw layer untouched, the rejects kept
        with pytest.raises(CsvReadError, match=f"could be ingested \\({len(every)} read"):
            ingest_batch(tmp_path_factory.mktemp("fuzz"), files)
        return
    paths, names, summary = ingest_batch(tmp_path_factory.mktemp("fuzz"), files)

    assert summary.rows_in == len(every)
    assert summary.rows_accepted + summary.rows_rejected == summary.rows_in
    assert summary.rows_accepted == len(good) and summary.rows_rejected == len(bad)

    rejected = quarantined(paths)
    assert len(rejected) == len(bad)
    assert rejected["reason"].str.len().gt(0).all()
    expected_files = [str(names[n]) for n, rows_ in enumerate(files) for r in rows_ if not r.good]
    assert sorted(rejected["file"]) == sorted(expected_files)
    # Each bad row is there as it was read, with a reason naming the field at fault.
    got = sorted(zip(rejected["raw_payload"], rejected["reason"], strict=True))
    want = []
    for row in bad:
        if row.bad_field == "fields":
            payload = {"fields": row.cells}
        else:
            payload = dict(zip(HEADER, row.cells, strict=True))
        want.append((json.dumps(payload, ensure_ascii=False), row.bad_field))
    for (payload, reason), (want_payload, field) in zip(got, sorted(want), strict=True):
        assert payload == want_payload
        assert field in reason, (reason, field)

    # Nothing accepted is lost on the way to the raw layer: every unit of every good row.
    lines = raw(paths, "order_lines")
    assert lines["quantity"].sum() == sum(int(row.cells[4]) for row in good)
    keys = {(int(r.cells[0]), r.cells[2].strip()) for r in good}
    assert len(lines) == len(keys) == summary.rows_accepted - summary.merged
    assert len(raw(paths, "events")) == len(lines)  # no cancellations in this mapping
    assert lines["order_ts"].max() <= pd.Timestamp.now(tz=UTC) + timedelta(days=1)


BROKEN_BYTES = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\x80abc"])


@settings(max_examples=15, deadline=None, database=None)
@given(
    before=st.lists(good_cells(), max_size=5),
    after=st.lists(good_cells(), max_size=5),
    broken=BROKEN_BYTES,
)
def test_undecodable_bytes_stop_the_ingest_naming_file_and_line(
    before: list[list[str]], after: list[list[str]], broken: bytes, tmp_path_factory
) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    good = folder / "good.csv"
    write_csv(good, [Row(c, None) for c in before])
    path = folder / "broken.csv"
    write_csv(path, [Row(c, None) for c in before])
    with path.open("ab") as handle:
        handle.write(b"1,2,sku" + broken + b",2024-01-01T00:00:00,1,1,t\n")
    with path.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(after)
    line = good.read_bytes().count(b"\n") + 1  # physical lines: quoted newlines count too
    paths = Paths(folder / "home")
    with pytest.raises(CsvReadError) as caught:
        ingest_csv(paths, MAPPING, [good, path])
    assert str(caught.value).startswith(f"{path}: line {line} is not utf-8 text")
    assert not paths.raw.exists()  # nothing written


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty (expected a header row)"),
        (b"order,customer,sku\n1,2,3\n", "header lacks ['ts', 'qty', 'price', 'title']"),
        (b"\n\n", "header lacks ['order', 'customer'"),  # blank lines only
        (b"\xef\xbb\xbf" + b"\xff\xfe" * 10, "line 1 is not utf-8 text"),
    ],
)
def test_unreadable_csv_files_are_named_with_the_problem(
    content: bytes, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    paths = Paths(tmp_path / "home")
    with pytest.raises(CsvReadError) as caught:
        ingest_csv(paths, MAPPING, [path])
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert not paths.raw.exists()
    with pytest.raises(CsvReadError, match="is a directory|cannot open"):
        ingest_csv(paths, MAPPING, [tmp_path])


# --- privacy: salted user ids ------------------------------------------------------------------


@settings(max_examples=15, deadline=None, database=None)
@given(files=batches())
def test_hashed_user_ids_never_store_the_raw_id(
    files: list[list[Row]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    good = [row for rows_ in files for row in rows_ if row.good]
    if not good:
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SALT_ENV, SALT)
        mapping = replace(MAPPING, hash_user_ids=True)
        paths, _, summary = ingest_batch(tmp_path_factory.mktemp("salted"), files, mapping)
    hasher = UserIdHasher(SALT)
    assert summary.rows_accepted + summary.rows_rejected == summary.rows_in
    stored = set(raw(paths, "order_lines")["user_id"]) | set(raw(paths, "events")["user_id"])
    assert stored == {hasher.one(str(int(row.cells[1]))) for row in good}
    assert stored.isdisjoint(int(row.cells[1]) for row in good)
    # The quarantine keeps the hash, never the id as written (ragged rows keep no fields).
    for payload in quarantined(paths)["raw_payload"].map(json.loads):
        if "fields" in payload:
            assert isinstance(payload["fields"], str) and payload["fields"].startswith("withheld")
            continue
        customer = payload["customer"]
        assert customer.strip() == "" or customer.startswith("salted:"), customer


def test_the_same_user_gets_the_same_hash_in_every_file_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = ["1", "0042", "sku-1", "2024-01-01T10:00:00", "1", "1.0", "t"]
    other = ["2", " 42 ", "sku-2", "2024-01-02T10:00:00", "2", "1.0", "t"]
    files = [[Row(cells, None)], [Row(other, None)]]
    mapping = replace(MAPPING, hash_user_ids=True)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    monkeypatch.delenv(SALT_ENV, raising=False)
    with pytest.raises(PrivacyConfigError, match=f"{SALT_ENV} .* is not set"):
        ingest_batch(tmp_path / "a", files, mapping)
    monkeypatch.setenv(SALT_ENV, "short")
    with pytest.raises(PrivacyConfigError, match="has only 5 characters"):
        ingest_batch(tmp_path / "a", files, mapping)

    monkeypatch.setenv(SALT_ENV, SALT)
    runs = []
    for name in ("a", "b"):
        paths, _, _ = ingest_batch(tmp_path / name, files, mapping)
        runs.append(sorted(raw(paths, "order_lines")["user_id"]))
    assert runs[0] == runs[1] and len(set(runs[0])) == 1  # "0042" and " 42 " are user 42
    assert runs[0][0] == UserIdHasher(SALT).one("42") != 42
    monkeypatch.setenv(SALT_ENV, SALT + "-rotated")
    paths, _, _ = ingest_batch(tmp_path / "a", files, mapping)
    assert set(raw(paths, "order_lines")["user_id"]).isdisjoint(runs[0])  # a new salt re-keys


def test_cli_hashes_user_ids_only_with_a_salt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import yaml

    from ml_jobs.cli import main as cli_main

    mapping = tmp_path / "fuzz.yml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "source": "fuzz",
                "columns": {**{f: c for c, f in FIELD_OF.items()}, "title": "title"},
                "ids": {"item_id": "hash"},
            }
        )
    )
    data = tmp_path / "orders.csv"
    write_csv(data, [Row(["1", "77", "sku", "2024-01-01T10:00:00", "2", "1.5", "t"], None)])
    home = tmp_path / "home"
    monkeypatch.setenv("BASKETCAST_HOME", str(home))
    command = ["--home", str(home), "ingest", "csv", "--mapping", str(mapping)]
    monkeypatch.delenv(SALT_ENV, raising=False)
    assert cli_main([*command, "--hash-user-ids", str(data)]) == 1
    assert SALT_ENV in capsys.readouterr().err
    assert not (home / "raw").exists()
    monkeypatch.setenv(SALT_ENV, SALT)
    assert cli_main([*command, "--hash-user-ids", str(data)]) == 0
    users = raw(Paths(home), "order_lines")["user_id"].tolist()
    assert users == [UserIdHasher(SALT).one("77")]
    assert cli_main([*command, str(data)]) == 0  # without the flag: the id as written
    assert raw(Paths(home), "order_lines")["user_id"].tolist() == [77]
