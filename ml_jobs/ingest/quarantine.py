"""Rejected input rows, kept with their reason: `raw/_rejected/<source>.parquet`.

An ingest adapter never drops a row silently. A row it cannot map into the raw contract goes to
the quarantine file of its source with the file and line it came from, why it was refused and
the row as it was read (JSON), so the owner of the data can fix and resend it. dbt reads only
`raw/<table>/`, so the quarantine folder never reaches the warehouse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml_jobs.config import Paths

REJECTED_DIR = "_rejected"

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("file", pa.string()),
        ("line_number", pa.int64()),  # 1-based line in the file, null when not line-based
        ("reason", pa.string()),
        ("raw_payload", pa.string()),  # the row as read, as a JSON object
    ]
)


def quarantine_path(paths: Paths, source: str) -> Path:
    """Where the rejected rows of `source` are written."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", source):
        raise ValueError(
            f"source name {source!r} must use only letters, digits, '_', '-' and '.': "
            "it names the quarantine file"
        )
    return paths.raw / REJECTED_DIR / f"{source}.parquet"


def payload_json(row: Mapping[str, object]) -> str:
    """A row as a JSON object; values that JSON cannot hold are written as text."""
    return json.dumps(dict(row), default=str, ensure_ascii=False)


class Quarantine:
    """Collects rejected rows of one source and counts them by reason."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._files: list[str] = []
        self._lines: list[int | None] = []
        self._reasons: list[str] = []
        self._payloads: list[str] = []

    def __len__(self) -> int:
        return len(self._reasons)

    def add(self, file: str, line_number: int | None, reason: str, payload: str) -> None:
        self._files.append(file)
        self._lines.append(line_number)
        self._reasons.append(reason)
        self._payloads.append(payload)

    def extend(
        self,
        file: str,
        line_numbers: Sequence[int | None],
        reasons: Sequence[str],
        payloads: Sequence[str],
    ) -> None:
        if not len(line_numbers) == len(reasons) == len(payloads):
            raise ValueError("line_numbers, reasons and payloads must have the same length")
        self._files.extend([file] * len(reasons))
        self._lines.extend(line_numbers)
        self._reasons.extend(reasons)
        self._payloads.extend(payloads)

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        tally: dict[str, int] = {}
        for reason in self._reasons:
            tally[reason] = tally.get(reason, 0) + 1
        return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))

    def table(self) -> pa.Table:
        return pa.table(
            {
                "source": [self.source] * len(self),
                "file": self._files,
                "line_number": self._lines,
                "reason": self._reasons,
                "raw_payload": self._payloads,
            },
            schema=QUARANTINE_SCHEMA,
        )

    def write(self, paths: Paths) -> Path:
        """Replace the source's quarantine file (an empty file when nothing was rejected)."""
        path = quarantine_path(paths, self.source)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.table(), path)
        return path
