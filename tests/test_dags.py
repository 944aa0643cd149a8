"""DAG integrity: the DAG files import fast, cleanly, and chain the steps in data-flow order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag

from ml_jobs.config import DAGS_DIR


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_dag_files_import_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert "basketcast_daily" in bag.dags


def test_daily_dag_runs_steps_in_data_flow_order(bag: DagBag) -> None:
    dag = bag.dags["basketcast_daily"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == [
        "generate_or_ingest",
        "dbt_build_warehouse",
        "feast_publish",
        "forecast_demand",
        "dbt_build_consumers",
    ]
    for task in dag.tasks:
        assert task.owner == "basketcast"
        assert task.retries >= 1
        assert len(task.downstream_list) <= 1  # a single chain: one warehouse writer at a time


def test_dag_file_imports_no_heavy_library_at_parse_time() -> None:
    code = (
        f"import sys, json; sys.path.insert(0, {str(DAGS_DIR)!r}); import basketcast_daily; "
        "print(json.dumps([m for m in ('feast', 'torch', 'xgboost', 'dbt') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
