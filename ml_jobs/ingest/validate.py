"""Row checks of ingested text columns: parse each field, or say why the row is refused.

Each parser takes the raw text of one field for every row and returns the parsed values and,
per row, the reason it failed (missing where fine). `first_reason` folds the checks in order,
so a row is reported with the first problem found, the way the dbt staging models do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_jobs.ingest.raw_output import stable_ids

Parsed = tuple[pd.Series, pd.Series]  # values, reason (pd.NA when the field is fine)


def _blank(text: pd.Series) -> pd.Series:
    return text.isna() | (text.astype("string").str.strip() == "")


def _reasons(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NA, index=index, dtype="string")


def parse_id(text: pd.Series, name: str, mode: str) -> Parsed:
    """An id as BIGINT: the integer written (`integer`) or a stable hash of the text (`hash`)."""
    reason = _reasons(text.index)
    blank = _blank(text)
    reason[blank] = f"missing {name}"
    stripped = text.astype("string").str.strip()
    if mode == "hash":
        values = stable_ids(stripped.fillna("")).astype("Int64")
    else:
        number = pd.to_numeric(stripped, errors="coerce")
        whole = number.notna() & (number == np.floor(number)) & (number.abs() < 2**62)
        values = number.where(whole).astype("Float64").round().astype("Int64")
        reason[~blank & ~whole] = f"{name} is not an integer"
    return values.where(reason.isna()), reason


def parse_timestamp(text: pd.Series, name: str, fmt: str, timezone: str) -> Parsed:
    """UTC timestamps from text in `fmt` ("iso" or strptime); naive ones are in `timezone`."""
    reason = _reasons(text.index)
    blank = _blank(text)
    reason[blank] = f"missing {name}"
    stripped = text.astype("string").str.strip()
    format_ = "ISO8601" if fmt == "iso" else fmt
    if "%z" in fmt:
        has_offset = pd.Series(True, index=text.index)
    else:
        has_offset = stripped.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).fillna(False)
    aware = pd.to_datetime(stripped.where(has_offset), format=format_, errors="coerce", utc=True)
    # Written without an offset: wall time in the mapping's zone.
    naive = pd.to_datetime(stripped.where(~has_offset), format=format_, errors="coerce")
    local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    parsed = aware.where(has_offset, local)
    unplaced = ~has_offset & naive.notna() & local.isna()
    reason[~blank & parsed.isna()] = f"{name} does not match format {fmt!r}"
    reason[unplaced] = f"{name} does not exist or is ambiguous in {timezone}"
    future = parsed > pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)
    reason[reason.isna() & future.fillna(False)] = f"{name} in the future"
    return parsed.where(reason.isna()), reason


def parse_number(text: pd.Series, name: str, *, whole: bool) -> Parsed:
    """A number (a whole one when `whole`); signs are checked by the caller."""
    reason = _reasons(text.index)
    blank = _blank(text)
    reason[blank] = f"missing {name}"
    number = pd.to_numeric(text.astype("string").str.strip(), errors="coerce").astype("Float64")
    ok = number.notna() & np.isfinite(number.fillna(0))
    if whole:
        ok &= number == number.round()
    kind = "a whole number" if whole else "a number"
    reason[~blank & ~ok.fillna(False)] = f"{name} is not {kind}"
    return number.where(reason.isna()), reason


def first_reason(*reasons: pd.Series) -> pd.Series:
    """Per row, the first non-missing reason of the checks in the order given."""
    out = reasons[0].copy()
    for more in reasons[1:]:
        out = out.fillna(more)
    return out
