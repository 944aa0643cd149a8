"""Feast's online layout, byte for byte: entity keys, feature values and table/hash names.

The bulk writer (``ml_jobs.serving.bulk_write``) and the lean reader (``ml_jobs.serving.reader``)
speak Feast 0.67's own online format, so ``FeatureStore.get_online_features`` reads what the
writer wrote and the reader reads what ``FeatureStore.materialize`` wrote:

- entity key: ``serialize_entity_key`` (version 3) of one INT64 join key, i.e. a fixed prefix
  for the join key name followed by the id as little-endian int64;
- value: a serialized ``feast.types.Value`` protobuf (``int64_val`` field 4 as a varint,
  ``double_val`` field 5 as 8 little-endian bytes); a null is the empty message ``b""``;
- SQLite: table ``<project>_<view>``, one row per (entity_key, feature_name) with the value,
  its text form, event_ts and created_ts as epoch seconds;
- Redis: one hash per entity at ``entity_key + project``; field ``mmh3("<view>:<feature>")``
  per feature plus ``_ts:<view>`` holding a ``google.protobuf.Timestamp``.

Only Int64 and Float64 features are encoded here (all basketcast views); anything else raises
so the caller falls back to Feast's own materialization.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

INT64 = "Int64"
FLOAT64 = "Float64"
SUPPORTED = (INT64, FLOAT64)
_DOUBLE_TAG = 0x29  # field 5 (double_val), wire type 1 (64-bit)
_INT64_TAG = 0x20  # field 4 (int64_val), wire type 0 (varint)
_DOUBLE = np.dtype([("tag", "u1"), ("value", "<f8")])


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_identifier(name: str, what: str) -> str:
    """``name`` when it is a plain SQL identifier (letters, digits, '_'), else ValueError.

    Project, view, join key and feature names come from configuration (the Feast repo,
    BASKETCAST_FEAST_PROJECT) and are written into SQL and store keys, so they are checked
    before any statement is built from them.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} is not a plain identifier: use letters, digits and '_' "
            "(not starting with a digit, at most 128 characters)"
        )
    return name


@dataclass(frozen=True)
class ViewLayout:
    """What the online store needs to know about one feature view."""

    project: str
    view: str
    join_key: str
    features: tuple[str, ...]
    dtypes: tuple[str, ...]  # "Int64" | "Float64", aligned with features

    def __post_init__(self) -> None:
        check_identifier(self.project, "Feast project name")
        check_identifier(self.view, "feature view name")
        check_identifier(self.join_key, f"join key of feature view {self.view!r}")
        for name in self.features:
            check_identifier(name, f"feature name in view {self.view!r}")

    @property
    def sqlite_table(self) -> str:
        return f"{self.project}_{self.view}"

    @property
    def redis_ts_field(self) -> bytes:
        return f"_ts:{self.view}".encode()

    def redis_fields(self) -> list[bytes]:
        from feast.infra.online_stores.helpers import _mmh3

        return [_mmh3(f"{self.view}:{name}") for name in self.features]


def view_layout(project: str, view: Any) -> ViewLayout:
    """The layout of a Feast FeatureView with one INT64 join key and Int64/Float64 features."""
    if len(view.join_keys) != 1:
        raise ValueError(f"feature view {view.name}: exactly one join key is supported")
    dtypes = tuple(str(field.dtype) for field in view.features)
    unsupported = [f.name for f, t in zip(view.features, dtypes, strict=True) if t not in SUPPORTED]
    if unsupported:
        raise ValueError(
            f"feature view {view.name}: features {unsupported} are not Int64/Float64; "
            "materialize it with Feast's own path"
        )
    return ViewLayout(
        project=project,
        view=view.name,
        join_key=view.join_keys[0],
        features=tuple(field.name for field in view.features),
        dtypes=dtypes,
    )


def entity_key_prefix(join_key: str) -> bytes:
    """The bytes serialize_entity_key (v3) puts before an INT64 id's 8 value bytes."""
    name = join_key.encode()
    value_type_int64 = 4
    return (
        struct.pack("<I", 1)
        + struct.pack("<I", 2)  # ValueType.STRING for the key name
        + struct.pack("<I", len(name))
        + name
        + struct.pack("<I", value_type_int64)
        + struct.pack("<I", 8)
    )


def entity_keys(join_key: str, ids: np.ndarray) -> list[bytes]:
    """Serialized entity keys for INT64 ids, as Feast's serialize_entity_key writes them."""
    prefix = entity_key_prefix(join_key)
    raw = np.ascontiguousarray(ids, dtype="<i8").tobytes()
    return [prefix + raw[i : i + 8] for i in range(0, len(raw), 8)]


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def encode_int64(values: np.ndarray, nulls: np.ndarray) -> list[bytes]:
    """Serialized Value protos of an int64 column; a null is ``b""``."""
    pylist = values.tolist()
    codes = {v: bytes([_INT64_TAG]) + _varint(v) for v in set(pylist)}
    out = [codes[v] for v in pylist]
    for i in np.flatnonzero(nulls).tolist():
        out[i] = b""
    return out


def encode_float64(values: np.ndarray, nulls: np.ndarray) -> list[bytes]:
    """Serialized Value protos of a float64 column; a null is ``b""``."""
    packed = np.empty(len(values), dtype=_DOUBLE)
    packed["tag"] = _DOUBLE_TAG
    packed["value"] = values
    raw = packed.tobytes()
    out = [raw[i : i + 9] for i in range(0, len(raw), 9)]
    for i in np.flatnonzero(nulls).tolist():
        out[i] = b""
    return out


def text_values(values: np.ndarray, nulls: np.ndarray) -> list[str | None]:
    """The ``value_text`` column Feast's SQLite store keeps beside each value: ``str(value)``."""
    out: list[str | None] = list(map(str, values.tolist()))
    for i in np.flatnonzero(nulls).tolist():
        out[i] = None
    return out


def decode_value(raw: bytes | None) -> float | None:
    """A serialized Int64/Float64 Value proto as a float; empty or missing is None."""
    if not raw:
        return None
    tag = raw[0]
    if tag == _DOUBLE_TAG:
        return struct.unpack_from("<d", raw, 1)[0]
    if tag == _INT64_TAG:
        value = shift = 0
        for byte in raw[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return float(value - (1 << 64) if value >= 1 << 63 else value)
    from feast.protos.feast.types.Value_pb2 import Value

    proto = Value()
    proto.ParseFromString(raw)
    kind = proto.WhichOneof("val")
    return None if kind is None else float(getattr(proto, kind))


def decode_many(raws: list[bytes | None]) -> np.ndarray:
    """``decode_value`` over a list, as float64 with NaN for nulls; doubles in one numpy pass."""
    out = np.full(len(raws), np.nan)
    doubles = [i for i, raw in enumerate(raws) if raw and raw[0] == _DOUBLE_TAG and len(raw) == 9]
    if doubles:
        joined = b"".join([raws[i] or b"" for i in doubles])
        out[doubles] = np.frombuffer(joined, dtype=_DOUBLE)["value"]
    if len(doubles) < len(raws):
        done = set(doubles)
        for i, raw in enumerate(raws):
            if raw and i not in done:
                value = decode_value(raw)
                if value is not None:
                    out[i] = value
    return out


def timestamp_proto(epoch_micros: int) -> bytes:
    """A serialized google.protobuf.Timestamp for a UTC instant in microseconds."""
    from google.protobuf.timestamp_pb2 import Timestamp

    seconds, micros = divmod(int(epoch_micros), 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000).SerializeToString()
