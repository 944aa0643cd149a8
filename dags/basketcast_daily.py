"""basketcast_daily: raw behaviour logs to published demand forecasts, once a day.

    generate_or_ingest → dbt_build_warehouse → feast_publish → forecast_demand → dbt_build_consumers

Every task calls one function of `ml_jobs.pipeline`, the same function the CLI and the tests
call. Heavy libraries (dbt, Feast, torch, XGBoost) are imported inside the tasks so the DAG file
parses fast. Tasks find the data through the `BASKETCAST_HOME` environment variable of the
worker. Writers of the DuckDB warehouse run one after another: the chain is linear.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "basketcast",
    "retries": 1,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
}


@dag(
    dag_id="basketcast_daily",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["basketcast"],
    params={
        "generate_if_missing": Param(
            True, type="boolean", description="Write a synthetic shop when no raw data exists."
        ),
    },
    doc_md=__doc__,
)
def basketcast_daily() -> None:
    @task
    def generate_or_ingest() -> dict[str, int]:
        """Make sure the raw layer holds data; a synthetic shop when asked and none exists."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        paths = Paths.from_env()
        if pipeline.raw_is_present(paths):
            return {}
        if not get_current_context()["params"]["generate_if_missing"]:
            raise pipeline.MissingInputError(f"no raw data under {paths.raw}")
        return pipeline.generate(paths)

    @task
    def dbt_build_warehouse() -> None:
        """dbt build of staging, marts and the Parquet feature exports, with their tests."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        pipeline.build_warehouse(Paths.from_env())

    @task
    def feast_publish() -> int:
        """feast apply, then materialize the newest features into the online store."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        return pipeline.publish_features(Paths.from_env())

    @task
    def forecast_demand() -> dict[str, object]:
        """Backtest, train and predict the demand models; write predictions and registry."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        return pipeline.forecast_demand(Paths.from_env())

    @task
    def dbt_build_consumers() -> None:
        """dbt build of the consumer marts over the champion's newest forecast."""
        from ml_jobs import pipeline
        from ml_jobs.config import Paths

        pipeline.build_consumers(Paths.from_env())

    (
        generate_or_ingest()
        >> dbt_build_warehouse()
        >> feast_publish()
        >> forecast_demand()
        >> dbt_build_consumers()
    )


basketcast_daily()
