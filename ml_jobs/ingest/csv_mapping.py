"""The declarative mapping of a transactions CSV onto the raw contract (docs/ingest.md).

A mapping is a small YAML file that names, for one CSV layout, which header holds each field
of an order line, how ids become BIGINTs, how timestamps are written and which rows are
cancellations. `load_mapping` checks it completely before a single row is read, so a typo fails
with a message that names the key to fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ml_jobs.ingest.quarantine import quarantine_path

REQUIRED_FIELDS = ("order_id", "user_id", "item_id", "order_ts", "quantity", "unit_price")
OPTIONAL_FIELDS = ("category", "title", "brand")
ID_FIELDS = ("order_id", "user_id", "item_id")
ID_MODES = ("integer", "hash")
TOP_LEVEL_KEYS = (
    "source",
    "delimiter",
    "encoding",
    "columns",
    "ids",
    "timestamp",
    "cancellation",
    "hash_user_ids",
)


class MappingError(ValueError):
    """The mapping file is not a valid mapping; the message says which key to fix."""


@dataclass(frozen=True)
class Cancellation:
    """A row is a cancellation when `column` starts with `starts_with` or equals one of `equals`."""

    column: str
    starts_with: str | None = None
    equals: tuple[str, ...] = ()

    def matches(self, value: str) -> bool:
        value = value.strip()
        if self.starts_with is not None and value.startswith(self.starts_with):
            return True
        return value in self.equals


@dataclass(frozen=True)
class CsvMapping:
    source: str  # names the quarantine file raw/_rejected/<source>.parquet
    columns: dict[str, str]  # contract field → CSV header
    ids: dict[str, str] = field(default_factory=dict)  # id field → integer | hash
    timestamp_format: str = "iso"  # strptime format, or "iso" (ISO 8601)
    timezone: str = "UTC"  # zone of timestamps written without an offset
    delimiter: str = ","
    encoding: str = "utf-8"
    cancellation: Cancellation | None = None
    hash_user_ids: bool = False  # salted hash of user ids (ml_jobs.ingest.privacy)

    def id_mode(self, name: str) -> str:
        return self.ids.get(name, "integer")

    @property
    def needed_headers(self) -> list[str]:
        """Every CSV header the mapping reads, in a stable order."""
        names = list(self.columns.values())
        if self.cancellation is not None:
            names.append(self.cancellation.column)
        return list(dict.fromkeys(names))


def _require_mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise MappingError(f"`{where}` must be a mapping of keys to values, got {value!r}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError(f"`{where}` must be a non-empty string, got {value!r}")
    return value


def parse_mapping(spec: object, origin: str = "mapping") -> CsvMapping:
    """Build and check a CsvMapping from parsed YAML; `origin` names the file in errors."""
    spec = _require_mapping(spec, origin)
    unknown = sorted(set(spec) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise MappingError(f"{origin}: unknown keys {unknown}; allowed: {list(TOP_LEVEL_KEYS)}")
    source = _text(spec.get("source"), f"{origin}: source")
    quarantine_path_check(source, origin)

    columns = _require_mapping(spec.get("columns"), f"{origin}: columns")
    allowed = REQUIRED_FIELDS + OPTIONAL_FIELDS
    extra = sorted(set(columns) - set(allowed))
    if extra:
        raise MappingError(f"{origin}: columns has unknown fields {extra}; allowed: {allowed}")
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        raise MappingError(f"{origin}: columns must name the CSV header of {missing}")
    columns = {k: _text(v, f"{origin}: columns.{k}") for k, v in columns.items()}

    ids = _require_mapping(spec.get("ids", {}), f"{origin}: ids")
    for key, mode in ids.items():
        if key not in ID_FIELDS:
            raise MappingError(f"{origin}: ids.{key} is not an id field; ids are {ID_FIELDS}")
        if mode not in ID_MODES:
            raise MappingError(f"{origin}: ids.{key} must be one of {ID_MODES}, got {mode!r}")

    stamp = _require_mapping(spec.get("timestamp", {}), f"{origin}: timestamp")
    bad_keys = sorted(set(stamp) - {"format", "timezone"})
    if bad_keys:
        raise MappingError(f"{origin}: timestamp has unknown keys {bad_keys}")
    fmt = _text(stamp.get("format", "iso"), f"{origin}: timestamp.format")
    if fmt != "iso":
        try:
            dt.datetime(2024, 1, 2, 3, 4, 5).strftime(fmt)
        except ValueError as error:
            raise MappingError(f"{origin}: timestamp.format {fmt!r} is invalid: {error}") from None
        if "%" not in fmt:
            raise MappingError(f"{origin}: timestamp.format {fmt!r} has no % directives")
    zone = _text(stamp.get("timezone", "UTC"), f"{origin}: timestamp.timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            f"{origin}: timestamp.timezone {zone!r} is not an IANA zone (e.g. UTC, Europe/London)"
        ) from None

    delimiter = _text(spec.get("delimiter", ","), f"{origin}: delimiter")
    if len(delimiter) != 1:
        raise MappingError(f"{origin}: delimiter must be one character, got {delimiter!r}")
    encoding = _text(spec.get("encoding", "utf-8"), f"{origin}: encoding")
    try:
        "".encode(encoding)
    except LookupError:
        raise MappingError(f"{origin}: encoding {encoding!r} is unknown") from None

    hash_user_ids = spec.get("hash_user_ids", False)
    if not isinstance(hash_user_ids, bool):
        raise MappingError(f"{origin}: hash_user_ids must be true or false, got {hash_user_ids!r}")

    return CsvMapping(
        source=source,
        columns=columns,
        ids=dict(ids),
        timestamp_format=fmt,
        timezone=zone,
        delimiter=delimiter,
        encoding=encoding,
        cancellation=_cancellation(spec.get("cancellation"), origin),
        hash_user_ids=hash_user_ids,
    )


def quarantine_path_check(source: str, origin: str) -> None:
    from ml_jobs.config import Paths

    try:
        quarantine_path(Paths(Path(".")), source)
    except ValueError as error:
        raise MappingError(f"{origin}: {error}") from None


def _cancellation(value: object, origin: str) -> Cancellation | None:
    if value is None:
        return None
    spec = _require_mapping(value, f"{origin}: cancellation")
    bad_keys = sorted(set(spec) - {"column", "starts_with", "equals"})
    if bad_keys:
        raise MappingError(f"{origin}: cancellation has unknown keys {bad_keys}")
    column = _text(spec.get("column"), f"{origin}: cancellation.column")
    starts_with = spec.get("starts_with")
    equals = spec.get("equals", [])
    if isinstance(equals, str):
        equals = [equals]
    if starts_with is None and not equals:
        raise MappingError(f"{origin}: cancellation needs `starts_with` or `equals`")
    if starts_with is not None:
        starts_with = _text(str(starts_with), f"{origin}: cancellation.starts_with")
    return Cancellation(column, starts_with, tuple(str(v).strip() for v in equals))


def load_mapping(path: Path | str) -> CsvMapping:
    """Read and check a YAML mapping file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError(f"mapping file {path} is not valid YAML: {error}") from None
    return parse_mapping(spec, origin=str(path))
