"""Out-of-core settings: DuckDB sessions of ml_jobs honour the memory limit and spill under the
basketcast home, never into the working directory they run from."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_jobs import features_duckdb
from ml_jobs.config import Paths
from ml_jobs.warehouse import (
    SESSION_SHARE,
    connect,
    duckdb_settings,
    memory_bytes,
    scratch_session,
    session_memory_limit,
)


def test_settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("BASKETCAST_DUCKDB_PRESERVE_ORDER", raising=False)
    assert duckdb_settings() == {}
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("BASKETCAST_DUCKDB_PRESERVE_ORDER", "false")
    assert duckdb_settings() == {"memory_limit": "512MB", "preserve_insertion_order": False}


def test_warehouse_connection_applies_the_memory_limit(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "256MB")
    with connect(home.warehouse) as con:
        (limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    assert limit.startswith("244.1 MiB")  # 256 MB in DuckDB's binary units


def test_in_memory_session_spills_under_the_home(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "64MB")
    with scratch_session(home.scratch) as con:
        # ~320 MB of rows in a 64 MB session: DuckDB must evict blocks to its temp files.
        con.execute("create table t as select range as i, random() as r from range(20000000)")
        files = con.execute("select path from duckdb_temporary_files()").fetchall()
        spilled = [Path(path) for (path,) in files]
        (rows,) = con.execute("select count(*) from t").fetchone()
    assert rows == 20_000_000
    assert spilled, "the session did not spill at all"
    assert all(p.parent == home.scratch for p in spilled)
    assert not (workdir / ".tmp").exists()
    assert list(home.scratch.iterdir()) == []  # DuckDB removes its files on close


def test_in_memory_sessions_get_their_own_smaller_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASKETCAST_SESSION_MEMORY_LIMIT", raising=False)
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "8GB")
    assert session_memory_limit() == f"{int(8e9 * SESSION_SHARE) // 2**20}MiB"
    monkeypatch.setenv("BASKETCAST_SESSION_MEMORY_LIMIT", "1.5GiB")
    assert session_memory_limit() == "1536MiB"
    monkeypatch.delenv("BASKETCAST_SESSION_MEMORY_LIMIT")
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "40%")  # as the dbt profile accepts
    assert session_memory_limit() == f"{int(memory_bytes('40%') * SESSION_SHARE) // 2**20}MiB"
    monkeypatch.delenv("BASKETCAST_DUCKDB_MEMORY_LIMIT")
    assert int(session_memory_limit().removesuffix("MiB")) > 0  # a share of physical memory
    monkeypatch.setenv("BASKETCAST_SESSION_MEMORY_LIMIT", "plenty")
    with pytest.raises(ValueError, match="BASKETCAST_SESSION_MEMORY_LIMIT 'plenty' is not a size"):
        session_memory_limit()


def test_feast_offline_session_spills_under_the_home(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ibis

    monkeypatch.delenv("BASKETCAST_SESSION_MEMORY_LIMIT", raising=False)
    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "1200MB")  # a quarter: 300 MB
    with features_duckdb.offline_session(home):
        backend = ibis.get_backend()
        settings = backend.raw_sql(
            "select current_setting('temp_directory'), current_setting('memory_limit')"
        ).fetchone()
    assert settings[0] == str(home.scratch)
    assert settings[1].startswith("286.0 MiB")  # 300 MB, in whole MiB
    assert ibis.options.default_backend is None  # closed again


def test_session_memory_limit_setting_reaches_the_sessions(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ibis

    monkeypatch.setenv("BASKETCAST_DUCKDB_MEMORY_LIMIT", "8GB")
    monkeypatch.setenv("BASKETCAST_SESSION_MEMORY_LIMIT", "200MiB")
    with features_duckdb.offline_session(home):
        (feast_limit,) = (
            ibis.get_backend().raw_sql("select current_setting('memory_limit')").fetchone()
        )
    with scratch_session(home.scratch) as con:
        (read_limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    with connect(home.warehouse) as con:
        (warehouse_limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    assert feast_limit.startswith("200.0 MiB") and read_limit.startswith("200.0 MiB")
    assert warehouse_limit.startswith("7.4 GiB")  # the warehouse keeps dbt's limit
