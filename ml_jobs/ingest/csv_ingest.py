"""`basketcast ingest csv`: transactions CSV files → the raw contract, bad rows quarantined.

Every data row of every file ends up in exactly one place: an order line, or the quarantine
`raw/_rejected/<source>.parquet` with its file, line number, reason and the row as read. Rows
of the same order and item (and status) are merged into one order line (quantities summed,
price weighted by quantity), since an order line is unique per order and item in the contract.
Cancelled rows become `cancelled` order lines (their quantity made positive) and no purchase
event. A file that cannot be read at all stops the ingest with a message naming the file.
With `hash_user_ids` (mapping key or `--hash-user-ids`) user ids are replaced by a salted hash
(ml_jobs.ingest.privacy) before anything is written, quarantined rows included.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.ingest.csv_mapping import ID_FIELDS, CsvMapping
from ml_jobs.ingest.privacy import UserIdHasher, salt_from_env
from ml_jobs.ingest.quarantine import Quarantine, payload_json
from ml_jobs.ingest.raw_output import stable_ids, write_raw
from ml_jobs.ingest.validate import first_reason, parse_id, parse_number, parse_timestamp

# Longest field read (characters): far above any real title, small enough to bound memory
# when a quote is left open and the rest of the file would become one field.
MAX_FIELD_CHARS = 16 << 20
WITHHELD = "withheld: the row may hold a raw user id and hash_user_ids is on"


class CsvReadError(ValueError):
    """A file could not be read as the mapping describes; the message names file and problem."""


@dataclass(frozen=True)
class CsvIngestSummary:
    source: str
    files: list[str]
    rows_in: int  # data rows read from all files
    rows_accepted: int  # rows that became (part of) an order line
    rejected: dict[str, int]  # quarantined rows per reason
    merged: int  # accepted rows merged into another row's order line
    rows: dict[str, int]  # rows written per raw table
    quarantine_file: str

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Let the csv module read fields of up to `limit` characters (its default is 128 KiB)."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _first_undecodable_line(path: Path, encoding: str) -> int:
    """1-based number of the first line that does not decode (0 when every line does)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number
    return 0


def read_csv_rows(path: Path, mapping: CsvMapping, quarantine: Quarantine) -> pd.DataFrame:
    """The mapped columns of every well-formed row as text, with `_line`; ragged rows quarantined.

    Raises CsvReadError when the file is missing, empty, not in the mapping's encoding, or lacks
    a header the mapping names.
    """
    name = str(path)
    try:
        handle = path.open(newline="", encoding=mapping.encoding)
    except FileNotFoundError:
        raise CsvReadError(f"{name}: file not found") from None
    except OSError as error:
        raise CsvReadError(f"{name}: cannot open ({error.strerror})") from None
    with handle, _field_limit(MAX_FIELD_CHARS):
        reader = csv.reader(handle, delimiter=mapping.delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise CsvReadError(f"{name}: file is empty (expected a header row)")
            header = [h.strip().lstrip("\ufeff") for h in header]
            missing = [h for h in mapping.needed_headers if h not in header]
            if missing:
                raise CsvReadError(
                    f"{name}: header lacks {missing} named in the mapping; the header is {header}"
                )
            wanted = [header.index(h) for h in mapping.needed_headers]
            rows: list[list[str]] = []
            lines: list[int] = []
            for fields in reader:
                if not fields:
                    continue  # blank line
                if len(fields) != len(header):
                    # With hashed user ids, a ragged row (whose user id may sit anywhere) is
                    # kept without its fields.
                    kept = WITHHELD if mapping.hash_user_ids else fields
                    quarantine.add(
                        name,
                        reader.line_num,
                        f"expected {len(header)} fields, got {len(fields)}",
                        payload_json({"fields": kept}),
                    )
                    continue
                rows.append([fields[i] for i in wanted])
                lines.append(reader.line_num)
        except UnicodeDecodeError as error:
            line = _first_undecodable_line(path, mapping.encoding)
            raise CsvReadError(
                f"{name}: line {line} is not {mapping.encoding} text ({error.reason}); "
                "set `encoding` in the mapping"
            ) from None
        except csv.Error as error:
            hint = ""
            if "field limit" in str(error):
                hint = " (is a quote left open? a field may hold at most that many characters)"
            raise CsvReadError(f"{name}: line {reader.line_num}: {error}{hint}") from None
    frame = pd.DataFrame(rows, columns=mapping.needed_headers, dtype="string")
    frame["_line"] = np.asarray(lines, dtype=np.int64)
    return frame


def _hashed_user_ids(
    text: pd.Series, values: pd.Series, reason: pd.Series, mode: str, hasher: UserIdHasher
) -> pd.Series:
    """Salted hash of each parsed user id: of the integer (so ' 7' and '007' agree) or the text."""
    ok = reason.isna()
    canonical = values[ok].astype("int64").astype(str) if mode == "integer" else text[ok]
    hashed = pd.Series(pd.NA, index=text.index, dtype="Int64")
    hashed[ok] = hasher.many(canonical.astype(str).str.strip()).astype("Int64")
    return hashed


def _parse(
    text: pd.DataFrame, mapping: CsvMapping, hasher: UserIdHasher | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Typed order-line fields of every row, and each row's rejection reason (or NA)."""
    col = mapping.columns
    parsed: dict[str, pd.Series] = {}
    checks: list[pd.Series] = []
    for name in ID_FIELDS:
        parsed[name], reason = parse_id(text[col[name]], name, mapping.id_mode(name))
        if name == "user_id" and hasher is not None:
            mode = mapping.id_mode(name)
            parsed[name] = _hashed_user_ids(text[col[name]], parsed[name], reason, mode, hasher)
        checks.append(reason)
    parsed["order_ts"], reason = parse_timestamp(
        text[col["order_ts"]], "order_ts", mapping.timestamp_format, mapping.timezone
    )
    checks.append(reason)
    quantity, reason = parse_number(text[col["quantity"]], "quantity", whole=True)
    checks.append(reason)
    price, reason = parse_number(text[col["unit_price"]], "unit_price", whole=False)
    checks.append(reason)

    if mapping.cancellation is not None:
        marker = text[mapping.cancellation.column].fillna("")
        cancelled = marker.map(mapping.cancellation.matches).astype(bool)
    else:
        cancelled = pd.Series(False, index=text.index)
    sign = pd.Series(pd.NA, index=text.index, dtype="string")
    sign[quantity == 0] = "quantity is zero"
    sign[(quantity < 0) & ~cancelled] = "negative quantity on a row that is not a cancellation"
    sign[price < 0] = "negative unit_price"
    checks.append(sign)

    parsed["quantity"] = quantity.abs()
    parsed["unit_price"] = price
    parsed["status"] = pd.Series(np.where(cancelled, "cancelled", "completed"), index=text.index)
    for optional in ("category", "title", "brand"):
        if optional in col:
            value = text[col[optional]].str.strip()
            parsed[optional] = value.where(value != "")
    return pd.DataFrame(parsed), first_reason(*checks)


def _merge_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One order line per order, item and status: quantities summed, price quantity-weighted."""
    lines = lines.assign(value=lines["quantity"] * lines["unit_price"])
    merged = lines.groupby(["order_id", "item_id", "status"], as_index=False, sort=False).agg(
        user_id=("user_id", "first"),
        order_ts=("order_ts", "min"),
        quantity=("quantity", "sum"),
        value=("value", "sum"),
    )
    merged["unit_price"] = (merged["value"] / merged["quantity"]).round(4)
    return merged.drop(columns="value")


def _items(accepted: pd.DataFrame, item_text: pd.Series) -> pd.DataFrame:
    frame = accepted.assign(item_text=item_text.loc[accepted.index])
    sold = frame[frame["status"] != "cancelled"]
    if sold.empty:
        sold = frame
    price = sold.groupby("item_id")["unit_price"].median()
    first = frame.groupby("item_id").agg(
        launched_at=("order_ts", "min"),
        item_text=("item_text", "first"),
        **{c: (c, "first") for c in ("category", "title", "brand") if c in frame.columns},
    )
    category = first["category"] if "category" in first else pd.Series(pd.NA, index=first.index)
    return pd.DataFrame(
        {
            "item_id": first.index.astype("int64"),
            "category_id": stable_ids(category.fillna("")).where(category.notna()).to_numpy(),
            "category_name": category.to_numpy(),
            "brand": first["brand"].to_numpy() if "brand" in first else None,
            "title": (first["title"] if "title" in first else first["item_text"])
            .fillna(first["item_text"])
            .to_numpy(),
            "base_price": price.reindex(first.index).round(4).to_numpy(),
            "launched_at": first["launched_at"].dt.floor("D").to_numpy(),
        }
    )


def ingest_csv(paths: Paths, mapping: CsvMapping, files: list[Path]) -> CsvIngestSummary:
    """Read `files` with `mapping` and replace the raw tables with their order lines."""
    if not files:
        raise CsvReadError("no CSV files given")
    hasher = UserIdHasher(salt_from_env()) if mapping.hash_user_ids else None
    quarantine = Quarantine(mapping.source)
    texts: list[pd.DataFrame] = []
    for path in files:
        text = read_csv_rows(Path(path), mapping, quarantine)
        texts.append(text.assign(_file=str(path)))
    text = pd.concat(texts, ignore_index=True)
    rows_in = len(text) + len(quarantine)

    parsed, reason = _parse(text, mapping, hasher)
    bad = reason.notna()
    header = mapping.needed_headers
    rejected = text.loc[bad, header]
    if hasher is not None:
        user_column = mapping.columns["user_id"]
        rejected[user_column] = rejected[user_column].map(hasher.redact)
    for file, part in text[bad].groupby("_file", sort=False):
        quarantine.extend(
            file,
            part["_line"].tolist(),
            reason[part.index].astype(str).tolist(),
            [payload_json(r) for r in rejected.loc[part.index].to_dict("records")],
        )
    accepted = parsed[~bad]
    if accepted.empty:
        # Replacing the raw layer with nothing would wipe the shop's history: refuse instead.
        path = quarantine.write(paths)
        raise CsvReadError(
            f"no row of {', '.join(str(f) for f in files)} could be ingested ({rows_in} read, "
            f"{len(quarantine)} rejected, reasons in {path}); the raw layer was left as it was"
        )
    order_lines = _merge_lines(accepted)
    order_lines["quantity"] = order_lines["quantity"].astype("int64")
    sold = order_lines[order_lines["status"] != "cancelled"].reset_index(drop=True)
    events = pd.DataFrame(
        {
            "event_id": np.arange(1, len(sold) + 1, dtype=np.int64),
            "user_id": sold["user_id"],
            "item_id": sold["item_id"],
            "event_type": "purchase",
            "event_ts": sold["order_ts"],
            "session_id": "order-" + sold["order_id"].astype(str),
            "quantity": sold["quantity"],
            "price": sold["unit_price"],
            "query_text": None,
        }
    )
    items = _items(accepted, text[mapping.columns["item_id"]].str.strip())
    rows = write_raw(paths, {"order_lines": order_lines, "events": events, "items": items})
    path = quarantine.write(paths)
    return CsvIngestSummary(
        source=mapping.source,
        files=[str(f) for f in files],
        rows_in=rows_in,
        rows_accepted=len(accepted),
        rejected=quarantine.counts(),
        merged=len(accepted) - len(order_lines),
        rows=rows,
        quarantine_file=str(path),
    )
