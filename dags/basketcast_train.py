"""basketcast_train: weekly backtests, training of every model, champion promotion.

    train_demand_models ─┐
                         ├─► (PREDICTIONS Asset: consumers refresh)
    train_user_models ───┘

Each training task runs rolling-origin backtests of every model of its product against the
baselines, trains on all history, writes its forecasts and registry rows, and promotes a
challenger only when it beats the champion on the same cutoffs. Training tasks run in the
`basketcast_gpu` pool and on the `gpu` queue (`BASKETCAST_TRAIN_QUEUE` names another; a Celery
worker started with `--queues gpu` on a GPU machine serves them; with the Local or Sequential
executor the queue is ignored; docs/deployment.md). The job picks CUDA when the worker has it
and the CPU otherwise. They read their inputs where the deployment's dbt target built them
(DuckDB, or the Spark catalog with `BASKETCAST_DBT_TARGET=spark`). Their short warehouse writes
wait for the DuckDB lock rather than fail.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from ml_jobs.dag_common import (
    DEFAULT_ARGS,
    GPU_POOL,
    PREDICTIONS,
    START,
    TRAIN_QUEUE,
    reader_task_args,
)


@dag(
    dag_id="basketcast_train",
    schedule="@weekly",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["basketcast", "training"],
    doc_md=__doc__,
)
def basketcast_train() -> None:
    @task(pool=GPU_POOL, queue=TRAIN_QUEUE, outlets=[PREDICTIONS])
    def train_demand_models(target: str | None = None) -> dict[str, object]:
        """Backtest and train the item demand models; promote a better challenger."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        return pipeline.train_demand(Paths.from_env(), target=target)

    @task(pool=GPU_POOL, queue=TRAIN_QUEUE, outlets=[PREDICTIONS])
    def train_user_models(target: str | None = None) -> dict[str, object]:
        """Backtest and train propensity, affinity and recommendation models."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        return pipeline.train_users(Paths.from_env(), target=target)

    train_demand_models(**reader_task_args()) >> train_user_models(**reader_task_args())


basketcast_train()
