"""basketcast_daily: raw behaviour logs to published predictions, once a day.

    ingest → dbt_build_warehouse → quality_gate → feast_materialize → predict_champions

- `ingest` makes sure the raw layer holds data (a synthetic shop when asked and none exists).
- `dbt_build_warehouse` builds staging, marts and the Parquet feature exports, with their tests;
  a failing dbt test fails the task and nothing downstream is published. It builds on the
  deployment's dbt target (`BASKETCAST_DBT_TARGET`, see docs/deployment.md).
- `quality_gate` checks the load reconciles (rows in = clean + rejected) and that rejects stay
  under the allowed share before anything is published.
- `feast_materialize` loads the feature snapshots of the run's data interval into the online
  store (on the Spark target through Feast's Spark offline store).
- `predict_champions` scores every product's champion model as of the interval and writes the
  predictions atomically; runs are keyed by (model run, as-of date), so rerunning a date
  replaces its rows. A product with no champion yet is trained first (bootstrap). Its inputs
  come from the warehouse the dbt task built (DuckDB, or the Spark catalog).

Consumer marts refresh in `basketcast_consumers`, scheduled on the PREDICTIONS Asset this DAG
updates. Every task calls one function of `ml_jobs.pipeline`, the same one the CLI and the tests
call; heavy libraries are imported inside the tasks. Tasks find the data through the worker's
`BASKETCAST_HOME`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from ml_jobs.dag_common import (
    DEFAULT_ARGS,
    MARTS,
    PREDICTIONS,
    START,
    WAREHOUSE_POOL,
    dbt_task_args,
    interval_dates,
    reader_task_args,
)


@dag(
    dag_id="basketcast_daily",
    schedule="@daily",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["basketcast"],
    params={
        "generate_if_missing": Param(
            False, type="boolean", description="Write a synthetic shop when no raw data exists."
        ),
        "max_rejected_share": Param(
            0.05, type="number", description="Largest share of rejected rows per raw table."
        ),
    },
    doc_md=__doc__,
)
def basketcast_daily() -> None:
    @task
    def ingest() -> dict[str, int]:
        """Make sure the raw layer holds data; a synthetic shop when asked and none exists."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        params = get_current_context()["params"]
        return pipeline.ingest(Paths.from_env(), generate_if_missing=params["generate_if_missing"])

    @task(pool=WAREHOUSE_POOL, outlets=[MARTS])
    def dbt_build_warehouse(target: str | None = None, full_refresh: bool = False) -> None:
        """dbt build of staging, marts and the Parquet feature exports, with their tests."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        pipeline.build_warehouse(Paths.from_env(), target=target, full_refresh=full_refresh)

    @task(pool=WAREHOUSE_POOL)
    def quality_gate(target: str | None = None) -> dict[str, object]:
        """Stop publication when the load does not reconcile or rejects too many rows.

        It reads the warehouse the build task wrote (`target`), so it queues behind writers.
        """
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        params = get_current_context()["params"]
        return pipeline.quality_gate(
            Paths.from_env(), max_rejected_share=params["max_rejected_share"], target=target
        )

    @task
    def feast_materialize(target: str | None = None) -> int:
        """Load the feature snapshots of this run's data interval into the online store."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        start, end = interval_dates(get_current_context())
        return pipeline.publish_features(Paths.from_env(), start=start, end=end, target=target)

    @task(pool=WAREHOUSE_POOL, outlets=[PREDICTIONS])
    def predict_champions(target: str | None = None) -> dict[str, object]:
        """Score every product's champion as of the data interval; write predictions."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        _, end = interval_dates(get_current_context())
        return pipeline.predict_champions(Paths.from_env(), interval_end=end, target=target)

    (
        ingest()
        >> dbt_build_warehouse(**dbt_task_args())
        >> quality_gate(**reader_task_args())
        >> feast_materialize(**reader_task_args())
        >> predict_champions(**reader_task_args())
    )


basketcast_daily()
