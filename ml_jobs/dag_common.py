"""What the basketcast DAGs share: defaults, pools, queues and the Assets they exchange.

Imported by the DAG files at parse time, so it stays free of heavy imports (only airflow.sdk
and ml_jobs.config).

Pools (defined in ml_jobs.config, created by `make airflow` and the local `dag.test()` runner):
- `basketcast_warehouse` (1 slot): DuckDB takes one writer per file, so every task that writes
  the warehouse (dbt builds, prediction write-back) runs in this pool, one at a time.
- `basketcast_gpu` (1 slot per GPU): model training. With the CeleryExecutor these tasks also go
  to the `gpu` queue, served by a worker on a GPU machine; the job itself picks CUDA when present.

Deployment settings come from the environment when the DAG files are parsed (the scheduler, the
DAG processor and the worker running a task must share them; docs/deployment.md):
- `BASKETCAST_DBT_TARGET` (unset: the profile's default, DuckDB): the profile output the dbt
  tasks build on, e.g. `spark`. Targets in FULL_BUILD_TARGETS rebuild every model on each run,
  since their tables cannot replace rows in place (plain Parquet on Spark).
- `BASKETCAST_TRAIN_QUEUE` (default `gpu`): the executor queue of the training tasks; the Local
  and Sequential executors ignore it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Asset

from ml_jobs.config import GPU_POOL, WAREHOUSE_POOL

OWNER = "basketcast"
START = datetime(2026, 1, 1)

__all__ = ["GPU_POOL", "WAREHOUSE_POOL"]
GPU_QUEUE = "gpu"
TRAIN_QUEUE = os.environ.get("BASKETCAST_TRAIN_QUEUE") or GPU_QUEUE

# Profile outputs whose incremental models cannot update in place: every build is a full one.
FULL_BUILD_TARGETS = frozenset({"spark"})
DBT_TARGET = os.environ.get("BASKETCAST_DBT_TARGET") or None


def dbt_task_args(*, incremental_models: bool = True) -> dict[str, object]:
    """Keyword arguments of the dbt tasks for this deployment: {} on the default warehouse.

    The target travels as a task argument, so the DAG shows where a task builds; a target in
    FULL_BUILD_TARGETS adds `full_refresh` to builds that hold incremental models.
    """
    if DBT_TARGET is None:
        return {}
    args: dict[str, object] = {"target": DBT_TARGET}
    if incremental_models and DBT_TARGET in FULL_BUILD_TARGETS:
        args["full_refresh"] = True
    return args


def reader_task_args() -> dict[str, object]:
    """Keyword arguments of the tasks that read what dbt built (quality gate, Feast, training,
    prediction): the deployment's target, so they read the warehouse the dbt tasks wrote (on
    `spark` the Spark catalog and Feast's Spark offline store); {} on the default warehouse."""
    return {} if DBT_TARGET is None else {"target": DBT_TARGET}


DEFAULT_ARGS = {
    "owner": OWNER,
    # BASKETCAST_TASK_RETRIES=0 makes a failing local test run fail at once;
    # BASKETCAST_RETRY_DELAY_S shortens the first retry's wait (tests of retries).
    "retries": int(os.environ.get("BASKETCAST_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=float(os.environ.get("BASKETCAST_RETRY_DELAY_S", "30"))),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

# Assets: the warehouse tables other DAGs react to.
MARTS = Asset("basketcast://warehouse/marts")
PREDICTIONS = Asset("basketcast://warehouse/predictions")
CONSUMERS = Asset("basketcast://warehouse/consumers")


def interval_dates(context: dict, period: timedelta = timedelta(days=1)) -> tuple[str, str]:
    """The run's data interval as ISO timestamps (start inclusive, end exclusive).

    Airflow 3's cron schedules trigger at the logical date and give manual and `dag.test()`
    runs an empty interval (start == end); such a run covers the `period` before its logical
    date, like a scheduled run does.
    """
    end = context.get("data_interval_end") or context["logical_date"]
    start = context.get("data_interval_start") or end
    if start >= end:
        start = end - period
    return start.isoformat(), end.isoformat()
