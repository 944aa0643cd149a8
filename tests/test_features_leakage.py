"""Point-in-time training reads never leak: a randomized check against a brute-force oracle.

Twelve users, ten daily snapshots each (built one hour after feature_ts), and late backfills
of random snapshots re-issued hours to days later with new values. Every snapshot version
carries a unique views_7d, so each training row shows exactly which version it got.

For 300 random (user, timestamp) rows, ``historical_features`` must return the version the
oracle picks from the raw export: the newest (feature_ts, created_ts) among versions with
feature_ts <= t and created_ts <= t (within the 90-day TTL), or null if none. In particular
no row ever sees a version created after its timestamp.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from test_features import D0, ITEM_COLUMNS, USER_COLUMNS, _write, user_row

from ml_jobs import features
from ml_jobs.config import QUIET_ENV, Paths

USERS = 12
DAYS = 10
ROWS = 300


def _versions(rng: np.random.Generator) -> list[dict]:
    rows = []
    for user in range(1, USERS + 1):
        for day in range(DAYS):
            stamp = D0 + timedelta(days=day)
            # A few users start late: rows before their first snapshot must be null.
            if day < user % 3:
                continue
            base = user_row(user, 0, created=stamp + timedelta(hours=1), views=user * 1000 + day)
            rows.append({**base, "feature_ts": stamp})
            if rng.random() < 0.35:  # a late backfill of this snapshot, new value
                late = timedelta(hours=int(rng.integers(2, 72)), minutes=int(rng.integers(60)))
                rows.append(
                    {
                        **base,
                        "feature_ts": stamp,
                        "created_ts": stamp + late,
                        "views_7d": -len(rows),
                    }
                )
    return rows


def _oracle(versions: pd.DataFrame, user: int, at: pd.Timestamp) -> float:
    known = versions[
        (versions["user_id"] == user)
        & (versions["feature_ts"] <= at)
        & (versions["created_ts"] <= at)
        & (versions["feature_ts"] > at - pd.Timedelta(days=90))
    ]
    if known.empty:
        return float("nan")
    newest = known.sort_values(["feature_ts", "created_ts"]).iloc[-1]
    return float(newest["views_7d"])


def test_random_rows_get_exactly_what_was_known(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2024)
    home = tmp_path / "home"
    monkeypatch.setenv("BASKETCAST_HOME", str(home))
    for key, value in QUIET_ENV.items():
        monkeypatch.setenv(key, value)
    paths = Paths(home.resolve())
    for name in ("user_features", "item_features"):
        paths.export_dir(name).mkdir(parents=True)
    versions = _versions(rng)
    # Backfills are appended after everything else, as a late re-export would write them.
    versions.sort(key=lambda row: row["created_ts"])
    _write(paths.export_dir("user_features") / "snapshots.parquet", versions, USER_COLUMNS)
    _write(paths.export_dir("item_features") / "snapshots.parquet", [], ITEM_COLUMNS)  # unused
    features.apply(paths)

    span_minutes = (DAYS + 3) * 24 * 60
    users = rng.integers(1, USERS + 2, ROWS)  # USERS + 1 is unknown
    stamps = [D0 + timedelta(minutes=int(m)) for m in rng.integers(0, span_minutes, ROWS)]
    entity_df = pd.DataFrame({"user_id": users, "event_timestamp": stamps})
    out = features.historical_features(paths, entity_df, "propensity_v1")

    frame = pd.DataFrame(versions)
    want = [_oracle(frame, int(u), pd.Timestamp(t)) for u, t in zip(users, stamps, strict=True)]
    got = out["views_7d"].to_numpy()
    np.testing.assert_array_equal(got, np.array(want))
    # The check is not vacuous: rows landed before and after backfills, and on nulls.
    backfill_values = set(frame.loc[frame["views_7d"] < 0, "views_7d"])
    assert backfill_values & set(got[~np.isnan(got)])
    assert np.isnan(got).sum() >= 5
    created = frame.set_index("views_7d")["created_ts"]
    for value, at in zip(got, stamps, strict=True):
        if not np.isnan(value):
            assert created[int(value)] <= pd.Timestamp(at), "a value leaked from the future"
