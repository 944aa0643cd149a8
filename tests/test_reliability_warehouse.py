"""Faults on the warehouse with real processes: kill -9 mid-write, two writers, killed jobs.

- A prediction write killed with SIGKILL after its rows were inserted but before the commit
  leaves nothing behind: `_latest` still shows the previous run, no partial rows, and the file
  opens and takes the next write.
- Writers in separate processes wait for DuckDB's lock (or fail with WarehouseBusyError naming
  the file after BASKETCAST_LOCK_TIMEOUT_S) and every committed row is there exactly once.
- A training process killed while its run is `running` does not leave the run `running`: the
  next `start_run` closes it as failed (abandoned); a live process's run is left alone.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml_jobs import registry, warehouse

TABLE = "item_demand_forecast"
RUN = "seasonal_naive-20260101T000000-aaaaaa"
DAY_1 = dt.date(2026, 3, 1)
DAY_2 = dt.date(2026, 3, 2)
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def forecast(run_id: str, as_of: dt.date, items: int, value: float) -> pd.DataFrame:
    rows = [
        {
            "run_id": run_id,
            "model_name": run_id.split("-")[0],
            "model_version": "1",
            "as_of_date": as_of,
            "predicted_at": dt.datetime(2026, 3, 3, tzinfo=dt.UTC),
            "item_id": item,
            "target_date": as_of + dt.timedelta(days=h),
            "horizon": h,
            "p10": value,
            "p50": value,
            "p90": value,
        }
        for item in range(items)
        for h in range(1, 29)
    ]
    return pd.DataFrame(rows)


def champion_with_one_day(path: Path) -> None:
    with warehouse.connect(path) as con:
        warehouse.ensure_prediction_schema(con)
        registry.start_run(con, registry.RunRecord(RUN, "seasonal_naive", "baseline", "1"))
    warehouse.write_predictions(path, TABLE, forecast(RUN, DAY_1, 50, 1.0))
    with warehouse.connect(path) as con:
        registry.finish_run(con, RUN, "succeeded")
        assert registry.promote_if_better(con, RUN, TABLE).promoted


def latest(path: Path) -> tuple[int, list[str], list[float]]:
    with warehouse.connect(path, read_only=True) as con:
        n = con.execute(f"SELECT count(*) FROM predictions.{TABLE}").fetchone()[0]
        days = con.execute(
            f"SELECT DISTINCT CAST(as_of_date AS VARCHAR) FROM predictions.{TABLE}_latest"
        ).fetchall()
        p50 = con.execute(f"SELECT DISTINCT p50 FROM predictions.{TABLE}_latest").fetchall()
    return n, [d for (d,) in days], [v for (v,) in p50]


KILL_MID_WRITE = """
import os, signal, sys
from contextlib import contextmanager
from pathlib import Path
from ml_jobs import warehouse
from tests.test_reliability_warehouse import forecast, RUN, TABLE, DAY_2

class Killing:
    # Forwards to the real connection; dies by SIGKILL right after the INSERT ran, before COMMIT.
    def __init__(self, con):
        self.con = con
    def __getattr__(self, name):
        return getattr(self.con, name)
    def execute(self, sql, *args):
        out = self.con.execute(sql, *args)
        if sql.lstrip().startswith("INSERT INTO predictions."):
            print("inserted, not committed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return out

real_connect = warehouse.connect

@contextmanager
def connect(path, read_only=False):
    with real_connect(path, read_only) as con:
        yield Killing(con)

warehouse.connect = connect
warehouse.write_predictions(Path(sys.argv[1]), TABLE, forecast(RUN, DAY_2, 2000, 9.0))
print("the write returned", flush=True)
"""


def test_a_prediction_write_killed_mid_transaction_leaves_the_previous_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    champion_with_one_day(path)
    before = latest(path)
    assert before == (50 * 28, [str(DAY_1)], [1.0])

    child = subprocess.run(
        [sys.executable, "-c", KILL_MID_WRITE, str(path)],
        capture_output=True,
        text=True,
        env=CHILD_ENV,
        cwd=CHILD_ENV["PYTHONPATH"],
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout == "inserted, not committed\n"

    assert latest(path) == before  # no partial rows; _latest shows the previous as-of date
    with warehouse.connect(path, read_only=True) as con:
        orphans = con.execute(
            f"SELECT count(*) FROM predictions.{TABLE} WHERE as_of_date = ?", [DAY_2]
        ).fetchone()[0]
    assert orphans == 0
    # The file is whole: the same write, run again, lands in full.
    warehouse.write_predictions(path, TABLE, forecast(RUN, DAY_2, 2000, 9.0))
    assert latest(path) == (50 * 28 + 2000 * 28, [str(DAY_2)], [9.0])


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ml_jobs import warehouse
with warehouse.connect(Path(sys.argv[1])) as con:
    con.execute("CREATE TABLE IF NOT EXISTS ml.holder AS SELECT 1 AS x")
    print("holding", flush=True)
    sys.stdin.readline()  # until the test says so
print("released", flush=True)
"""

WRITE_RUN = """
import sys
from pathlib import Path
from ml_jobs import warehouse
from tests.test_reliability_warehouse import forecast, DAY_1
frame = forecast(sys.argv[2], DAY_1, 200, float(sys.argv[3]))
warehouse.write_predictions(Path(sys.argv[1]), "item_demand_forecast", frame)
print("written", flush=True)
"""


def spawn(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**CHILD_ENV, **(env or {})},
        cwd=CHILD_ENV["PYTHONPATH"],
    )


def test_concurrent_writers_wait_or_fail_clearly_and_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    champion_with_one_day(path)
    holder = spawn(HOLD_LOCK, str(path))
    assert holder.stdout.readline().strip() == "holding"

    # An impatient writer fails with a message naming the file; a patient one waits.
    impatient = spawn(
        WRITE_RUN, str(path), "impatient-1-a", "3", env={"BASKETCAST_LOCK_TIMEOUT_S": "1"}
    )
    writers = [spawn(WRITE_RUN, str(path), f"writer-{n}-a", str(n)) for n in range(3)]
    _, err = impatient.communicate(timeout=120)
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert impatient.returncode == 1
    assert "WarehouseBusyError" in err and f"the warehouse {path} is locked" in err
    assert "BASKETCAST_LOCK_TIMEOUT_S" in err
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.strip() == "written"
    assert holder.wait(timeout=60) == 0

    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = dict(
            con.execute(
                f"SELECT run_id, count(*) FROM predictions.{TABLE} GROUP BY run_id"
            ).fetchall()
        )
        assert con.execute("SELECT count(*) FROM ml.holder").fetchone()[0] == 1
    finally:
        con.close()
    assert runs == {RUN: 50 * 28, **{f"writer-{n}-a": 200 * 28 for n in range(3)}}


START_AND_SLEEP = """
import sys, time
from pathlib import Path
from ml_jobs import registry, warehouse
with warehouse.connect(Path(sys.argv[1])) as con:
    registry.start_run(con, registry.RunRecord(sys.argv[2], "torch_quantile", "torch", "1"))
print("running", flush=True)
time.sleep(600)
"""


def test_a_killed_training_process_does_not_leave_its_run_running(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with warehouse.connect(path) as con:
        warehouse.ensure_prediction_schema(con)
    killed = spawn(START_AND_SLEEP, str(path), "torch_quantile-killed")
    alive = spawn(START_AND_SLEEP, str(path), "torch_quantile-alive")
    try:
        for child in (killed, alive):
            assert child.stdout.readline().strip() == "running"
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        with warehouse.connect(path) as con:
            registry.start_run(con, registry.RunRecord("xgboost-next", "xgboost", "xgboost", "1"))
            rows = con.execute(
                """SELECT run_id, status, metrics->>'error', owner_pid
                FROM ml.model_runs ORDER BY run_id"""
            ).fetchall()
    finally:
        for child in (killed, alive):
            child.kill()
            child.wait(timeout=30)
    by_run = {run_id: (status, error, pid) for run_id, status, error, pid in rows}
    status, error, pid = by_run["torch_quantile-killed"]
    assert status == "failed" and pid == killed.pid
    assert error.startswith(f"abandoned: process {killed.pid} on ")
    assert by_run["torch_quantile-alive"][:2] == ("running", None)  # its process still lives
    assert by_run["xgboost-next"][:2] == ("running", None)


def test_runs_of_other_hosts_are_abandoned_only_after_the_stale_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "warehouse.duckdb"
    now = dt.datetime.now(dt.UTC)
    with warehouse.connect(path) as con:
        warehouse.ensure_prediction_schema(con)
        for run_id, hours in (("old", 30), ("young", 2)):
            con.execute(
                """INSERT INTO ml.model_runs (run_id, model_name, model_kind, model_version,
                    trained_at, status, owner_host, owner_pid)
                VALUES (?, 'm', 'torch', '1', ?, 'running', 'gpu-worker-7', 4242)""",
                [run_id, now - dt.timedelta(hours=hours)],
            )
        monkeypatch.setenv("BASKETCAST_STALE_RUN_HOURS", "24")
        assert registry.fail_abandoned_runs(con) == ["old"]
        error = con.execute(
            "SELECT metrics->>'error' FROM ml.model_runs WHERE run_id = 'old'"
        ).fetchone()[0]
        assert "running on gpu-worker-7 for 30.0 h" in error
        monkeypatch.setenv("BASKETCAST_STALE_RUN_HOURS", "1")
        assert registry.fail_abandoned_runs(con) == ["young"]
        assert registry.fail_abandoned_runs(con) == []
