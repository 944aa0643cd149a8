"""DAG integrity of the deployment variants: dbt on Spark, training on a GPU queue.

The deployment settings (BASKETCAST_DBT_TARGET, BASKETCAST_TRAIN_QUEUE) are read when the DAG
files are parsed, so each deployment is parsed by a real DagBag in a fresh Python process with
its environment: no import errors, the dbt tasks carry the target (and a full refresh where
Spark cannot update incremental models in place), training goes to its queue and the GPU pool,
warehouse writers keep their pool, and nothing heavy is imported at parse time. The Spark
build's selection, listed by real dbt, keeps the data tests and leaves out the unit tests Spark
cannot run.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml_jobs import dbt_runner
from ml_jobs.config import DAGS_DIR, DBT_PROJECT_DIR, GPU_POOL, WAREHOUSE_POOL

HEAVY = ("feast", "torch", "xgboost", "dbt", "duckdb", "pandas", "pyspark")
SETTINGS = ("BASKETCAST_DBT_TARGET", "BASKETCAST_TRAIN_QUEUE")
TRAINING = {"train_demand_models", "train_user_models"}
WRITERS = {"dbt_build_warehouse", "predict_champions", "dbt_build_consumers"}
READERS = {"quality_gate", "feast_materialize", "predict_champions", *TRAINING}

PARSE = f"""
import json, sys
sys.path.insert(0, {str(DAGS_DIR)!r})
import basketcast_daily, basketcast_train, basketcast_consumers
heavy = [m for m in {HEAVY!r} if m in sys.modules]
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS_DIR)!r})
tasks = {{
    t.task_id: {{"dag": d.dag_id, "pool": t.pool, "queue": t.queue,
                 "op_kwargs": dict(getattr(t, "op_kwargs", {{}}) or {{}})}}
    for d in bag.dags.values() for t in d.tasks
}}
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                  "dags": sorted(bag.dags), "heavy": heavy, "tasks": tasks}}))
"""


@functools.cache
def parse(**settings: str) -> dict:
    """What a DagBag sees when the DAG files are parsed with these deployment settings."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS} | settings
    out = subprocess.run(
        [sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def spark_gpu() -> dict:
    return parse(BASKETCAST_DBT_TARGET="spark", BASKETCAST_TRAIN_QUEUE="gpu")


def test_variant_parses_cleanly_without_heavy_imports() -> None:
    seen = spark_gpu()
    assert seen["errors"] == {}
    assert seen["dags"] == ["basketcast_consumers", "basketcast_daily", "basketcast_train"]
    assert seen["heavy"] == []


def test_dbt_tasks_build_on_spark_in_full() -> None:
    tasks = spark_gpu()["tasks"]
    # Spark's Parquet tables cannot replace rows in place: the warehouse build is a full one.
    assert tasks["dbt_build_warehouse"]["op_kwargs"] == {"target": "spark", "full_refresh": True}
    # No full refresh of the consumers: marketing_segments keeps its history of as-of dates.
    assert tasks["dbt_build_consumers"]["op_kwargs"] == {"target": "spark"}
    # The gate, Feast, training and prediction read the warehouse those tasks built (the Spark
    # catalog and Feast's Spark offline store), and the DAG shows which.
    for task_id in READERS:
        assert tasks[task_id]["op_kwargs"] == {"target": "spark"}, task_id
    others = {t for t, v in tasks.items() if not t.startswith("dbt_") and v["op_kwargs"]}
    assert others == READERS


def test_quality_gate_follows_the_deployments_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no target (the default deployment), quality_gate reads BASKETCAST_DBT_TARGET on
    the worker, the variable the dbt tasks were parsed with, so it checks what they built."""
    from ml_jobs.spark import resolve_target

    monkeypatch.setenv("BASKETCAST_DBT_TARGET", "spark")
    assert resolve_target(None) == "spark"
    assert resolve_target("duckdb") == "duckdb"
    monkeypatch.delenv("BASKETCAST_DBT_TARGET")
    assert resolve_target(None) == "duckdb"


def test_training_goes_to_the_gpu_queue_and_writers_keep_the_warehouse_pool() -> None:
    tasks = spark_gpu()["tasks"]
    for task_id in TRAINING:
        assert tasks[task_id]["queue"] == "gpu" and tasks[task_id]["pool"] == GPU_POOL, task_id
    for task_id in WRITERS | {"quality_gate"}:  # the gate reads what the writers write
        assert tasks[task_id]["pool"] == WAREHOUSE_POOL, task_id
    # Everything else runs on the workers of the default queue.
    rest = {tasks[t]["queue"] for t in tasks if t not in TRAINING}
    assert len(rest) == 1 and "gpu" not in rest


def test_default_deployment_is_unchanged() -> None:
    seen = parse()
    assert seen["errors"] == {} and seen["heavy"] == []
    tasks = seen["tasks"]
    assert all(v["op_kwargs"] == {} for v in tasks.values())
    assert all(tasks[t]["queue"] == "gpu" and tasks[t]["pool"] == GPU_POOL for t in TRAINING)


def test_other_target_and_queue_follow_the_environment() -> None:
    """Postgres updates incremental models in place: no full refresh; a CPU-only Celery
    deployment can route training to a queue its workers serve."""
    tasks = parse(BASKETCAST_DBT_TARGET="postgres", BASKETCAST_TRAIN_QUEUE="default")["tasks"]
    assert tasks["dbt_build_warehouse"]["op_kwargs"] == {"target": "postgres"}
    assert all(tasks[t]["queue"] == "default" and tasks[t]["pool"] == GPU_POOL for t in TRAINING)


def selected_tests(target: str) -> dict[str, int]:
    """Data and unit tests the warehouse build on `target` selects, as `dbt ls` lists them."""
    from dbt.cli.main import dbtRunner

    args = dbt_runner.warehouse_build_args(target=target, full_refresh=True)
    selection = [a for a in args if a not in ("build", "--full-refresh")]
    project = str(DBT_PROJECT_DIR)
    outcome = dbtRunner().invoke(
        ["ls", *selection, "--resource-type", "test", "--resource-type", "unit_test"]
        + ["--output", "json", "--output-keys", "resource_type", "--target", target]
        + ["--project-dir", project, "--profiles-dir", project, "--quiet"]
    )
    assert outcome.success, outcome.exception
    kinds = [json.loads(line)["resource_type"] for line in outcome.result]
    return {kind: kinds.count(kind) for kind in ("test", "unit_test")}


def test_spark_build_keeps_data_tests_and_leaves_unit_tests_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    monkeypatch.delenv("BASKETCAST_DBT_TARGET", raising=False)
    duck, spark = selected_tests("duckdb"), selected_tests("spark")
    assert duck["unit_test"] > 0 and spark["unit_test"] == 0
    assert spark["test"] == duck["test"] > 0
