"""basketcast_consumers: rebuild the consumer marts whenever new predictions land.

Scheduled on the PREDICTIONS Asset, which `basketcast_daily` (batch prediction) and
`basketcast_train` (new champions) update. The marts read only the `_latest` prediction views,
so they always show the champion's newest run.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from ml_jobs.dag_common import (
    CONSUMERS,
    DEFAULT_ARGS,
    PREDICTIONS,
    START,
    WAREHOUSE_POOL,
    dbt_task_args,
)


@dag(
    dag_id="basketcast_consumers",
    schedule=[PREDICTIONS],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["basketcast"],
    doc_md=__doc__,
)
def basketcast_consumers() -> None:
    @task(pool=WAREHOUSE_POOL, outlets=[CONSUMERS])
    def dbt_build_consumers(target: str | None = None) -> None:
        """dbt build of the consumer marts (inventory, ads, marketing) with their tests."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        pipeline.build_consumers(Paths.from_env(), target=target)

    dbt_build_consumers(**dbt_task_args(incremental_models=False))


basketcast_consumers()
