"""Faults inside the Airflow DAGs (real `dag.test()` runs): failures publish nothing, retries heal.

A tiny shop is built with dbt and given a champion demand forecast. Then:
- a raw file dbt cannot read makes `dbt_build_warehouse` fail in `basketcast_daily`: the run
  fails, the log names the file and the problem, and nothing downstream happens (predictions,
  registry and online store unchanged);
- another process holding the warehouse's write lock makes the first try of
  `dbt_build_consumers` fail; once the lock is released, Airflow's retry succeeds and builds the
  consumer marts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import duckdb
import pytest

from ml_jobs import pipeline, registry, warehouse
from ml_jobs.airflow_local import DagRunFailed, run_dag
from ml_jobs.config import Paths
from ml_jobs.generate import ShopConfig, generate_shop

pytestmark = pytest.mark.e2e

SHOP = ShopConfig(users=40, items=8, days=40)
RUN = "seasonal_naive-20260101T000000-dagflt"
TABLE = "item_demand_forecast"


def query(paths: Paths, sql: str) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def checksum(paths: Paths, sql: str) -> str:
    rows = sorted(str(row) for row in query(paths, sql))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def shop(module_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    import pandas as pd

    folder = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(folder / "target"))
        patch.setenv("DBT_LOG_PATH", str(folder / "logs"))
        generate_shop(SHOP, module_home)
        pipeline.build_warehouse(module_home)
        as_of = pipeline.raw_data_end(module_home)
        items = [i for (i,) in query(module_home, "select item_id from marts.dim_items")]
        frame = pd.DataFrame(
            [
                {
                    "run_id": RUN,
                    "model_name": "seasonal_naive",
                    "model_version": "1",
                    "as_of_date": as_of,
                    "predicted_at": pd.Timestamp.now(tz="UTC"),
                    "item_id": item,
                    "target_date": as_of + pd.Timedelta(days=h),
                    "horizon": h,
                    "p10": 1.0,
                    "p50": 2.0,
                    "p90": 3.0,
                }
                for item in items
                for h in range(1, 29)
            ]
        )
        with warehouse.connect(module_home.warehouse) as con:
            warehouse.ensure_prediction_schema(con)
            registry.start_run(con, registry.RunRecord(RUN, "seasonal_naive", "baseline", "1"))
        warehouse.write_predictions(module_home.warehouse, TABLE, frame)
        with warehouse.connect(module_home.warehouse) as con:
            registry.finish_run(con, RUN, "succeeded")
            registry.promote_if_better(con, RUN, TABLE)
        yield module_home


def test_a_failing_dbt_model_mid_dag_publishes_nothing(
    shop: Paths, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("BASKETCAST_TASK_RETRIES", "0")
    published = {
        "predictions": checksum(shop, f"select * from predictions.{TABLE}"),
        "latest": checksum(shop, f"select * from predictions.{TABLE}_latest"),
        "registry": checksum(shop, "select run_id, status, is_champion from ml.model_runs"),
    }
    broken = shop.raw_table("events") / "part-zz-broken.parquet"
    broken.write_bytes(b"this is not parquet")
    try:
        with pytest.raises(DagRunFailed):
            run_dag("basketcast_daily", shop, logical_date=pipeline.next_logical_date(shop))
    finally:
        broken.unlink()
    log = capfd.readouterr()
    text = log.out + log.err
    assert "part-zz-broken.parquet" in text and "No magic bytes" in text
    assert published == {
        "predictions": checksum(shop, f"select * from predictions.{TABLE}"),
        "latest": checksum(shop, f"select * from predictions.{TABLE}_latest"),
        "registry": checksum(shop, "select run_id, status, is_champion from ml.model_runs"),
    }
    assert not any(shop.feast.glob("**/*.db"))  # the online store was never written
    states = task_states(shop, "basketcast_daily")
    assert states["dbt_build_warehouse"] == "failed"
    assert states["predict_champions"] == "upstream_failed"


def task_states(paths: Paths, dag_id: str) -> dict[str, str]:
    """State of each task of the DAG's newest run, from Airflow's metadata database."""
    con = sqlite3.connect(paths.airflow / "airflow.db")
    try:
        rows = con.execute(
            """select task_id, state from task_instance where dag_id = ? and run_id =
               (select run_id from dag_run where dag_id = ? order by id desc limit 1)""",
            [dag_id, dag_id],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


HOLD_LOCK = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def test_a_task_that_fails_while_the_warehouse_is_busy_succeeds_on_retry(
    shop: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASKETCAST_TASK_RETRIES", "1")
    monkeypatch.setenv("BASKETCAST_RETRY_DELAY_S", "1")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(shop.warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "holding"
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            run_dag("basketcast_consumers", shop, logical_date=pipeline.next_logical_date(shop))
            outcome["ok"] = True
        except DagRunFailed as error:
            outcome["error"] = error

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and runner.is_alive():
            if (shop.airflow / "airflow.db").exists():
                try:
                    state = task_states(shop, "basketcast_consumers").get("dbt_build_consumers")
                except sqlite3.OperationalError:  # tables not migrated yet / locked
                    state = None
                if state == "up_for_retry":
                    break
            time.sleep(0.2)
        else:
            pytest.fail("dbt_build_consumers never waited for a retry")
    finally:
        holder.stdin.write("release\n")
        holder.stdin.flush()
        holder.wait(timeout=60)
        runner.join(timeout=600)
    assert outcome == {"ok": True}
    con = sqlite3.connect(shop.airflow / "airflow.db")
    try:
        (tries,) = con.execute(
            """select try_number from task_instance
               where dag_id = 'basketcast_consumers' and task_id = 'dbt_build_consumers'
               order by start_date desc limit 1"""
        ).fetchone()
    finally:
        con.close()
    assert tries == 2
    plan = query(
        shop, "select count(*), count(distinct run_id) from consumers.inventory_replenishment_plan"
    )
    assert plan == [(SHOP.items, 1)]
