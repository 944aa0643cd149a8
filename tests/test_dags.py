"""DAG integrity: the DAG files import cleanly without heavy libraries, chain the steps in
data-flow order, and put warehouse writers and training into their pools."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag

from ml_jobs.config import AIRFLOW_POOLS, DAGS_DIR, GPU_POOL, WAREHOUSE_POOL

DAG_IDS = {"basketcast_daily", "basketcast_train", "basketcast_consumers"}


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_dag_files_import_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert set(bag.dags) == DAG_IDS


def test_daily_dag_runs_steps_in_data_flow_order(bag: DagBag) -> None:
    dag = bag.dags["basketcast_daily"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "ingest",
        "dbt_build_warehouse",
        "quality_gate",
        "feast_materialize",
        "predict_champions",
    ]
    assert all(len(t.downstream_list) <= 1 for t in dag.tasks)


def test_every_task_has_owner_retries_and_backoff(bag: DagBag) -> None:
    for dag in bag.dags.values():
        assert dag.max_active_runs == 1
        for task in dag.tasks:
            assert task.owner == "basketcast", task.task_id
            assert task.retries >= 2, task.task_id
            assert task.retry_exponential_backoff, task.task_id


def test_warehouse_writers_share_one_slot_and_training_uses_the_gpu_pool(bag: DagBag) -> None:
    assert AIRFLOW_POOLS[WAREHOUSE_POOL][0] == 1
    writers = {"dbt_build_warehouse", "predict_champions", "dbt_build_consumers"}
    for dag in bag.dags.values():
        for task in dag.tasks:
            if task.task_id in writers:
                assert task.pool == WAREHOUSE_POOL, task.task_id
            if task.task_id.startswith("train_"):
                assert task.pool == GPU_POOL and task.queue == "gpu", task.task_id


def test_consumers_refresh_when_predictions_land(bag: DagBag) -> None:
    predictions = "basketcast://warehouse/predictions"
    producers = {
        t.task_id
        for dag in bag.dags.values()
        for t in dag.tasks
        if any(getattr(o, "uri", None) == predictions for o in t.outlets)
    }
    assert {"predict_champions", "train_demand_models"} <= producers
    consumers = bag.dags["basketcast_consumers"]
    watched = [a.uri for a in consumers.timetable.asset_condition.objects]
    assert watched == [predictions]


def test_dag_files_import_no_heavy_library_at_parse_time() -> None:
    code = (
        f"import sys, json; sys.path.insert(0, {str(DAGS_DIR)!r}); "
        "import basketcast_daily, basketcast_train, basketcast_consumers; "
        "print(json.dumps([m for m in ('feast', 'torch', 'xgboost', 'dbt', 'duckdb', 'pandas')"
        " if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
