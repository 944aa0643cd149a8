"""The Spark warehouse for the steps after dbt: the session, reads, and atomic table replace.

With the `spark` output of dbt_project/profiles.yml (BASKETCAST_DBT_TARGET=spark) dbt builds
the warehouse as Spark catalog tables. The Python steps reach the same catalog here:

- `session` starts (or takes) this process's Spark session with the profile's own settings,
  rendered by dbt for the given home, so it opens the catalog dbt built in (with a Thrift or
  HTTP profile, a cluster's, the settings of feature_repo/feature_store.spark.yaml). Spark keeps
  one session per process and fixes its catalog when the JVM starts: a process serves one home.
  Locally that catalog is a Derby database under the home, which one process at a time opens.
- `replace_table` makes a table hold exactly a DataFrame's rows, atomically for readers: the
  rows are written to a new folder first (a failed write leaves the table as it was), then
  one catalog update points the table at that folder, and the old folder is deleted.
- `write_predictions` replaces the rows of each (run_id, as_of_date) in a frame, the way
  `ml_jobs.warehouse.write_predictions` does on DuckDB, with the same columns in the same order.
- `publish_predictions` brings Spark up to date with the prediction tables and the registry
  ml_jobs keeps in warehouse.duckdb: the blocks that differ, the whole `ml.model_runs`, the
  backtest metrics of new runs, and the `_latest` views, which are the same SQL as on DuckDB.

pyspark is imported only inside these functions: only the Spark target calls them.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml_jobs.config import Paths, profiles_dir
from ml_jobs.warehouse import (
    ADDED_COLUMNS,
    PREDICTION_TABLES,
    RUN_COLUMNS,
    connect,
    latest_view_sql,
    table_exists,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_TARGET = "spark"
# DuckDB column types -> Spark SQL types (TIMESTAMPTZ is an instant, as Spark's TIMESTAMP).
SPARK_TYPES = {
    "VARCHAR": "string",
    "JSON": "string",
    "BOOLEAN": "boolean",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMPTZ": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
}
# Session settings ml_jobs adds to the profile's: dbt-spark turns ANSI mode off for its
# session too, and pandas frames cross into Spark as Arrow.
SESSION_SETTINGS = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class SparkTargetError(RuntimeError):
    """The Spark target cannot be reached the way this process needs it."""


def resolve_target(target: str | None) -> str:
    """The dbt profile output a step works on: `target`, else BASKETCAST_DBT_TARGET, else duckdb."""
    return target or os.environ.get("BASKETCAST_DBT_TARGET") or "duckdb"


def profile_output(paths: Paths, target: str = SPARK_TARGET) -> dict[str, Any]:
    """The `target` output of the dbt profile (`ml_jobs.config.profiles_dir`), rendered by dbt
    for the home `paths`."""
    from dbt.config.profile import read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    env = {"BASKETCAST_HOME": str(paths.home), "BASKETCAST_WAREHOUSE": str(paths.warehouse)}
    set_invocation_context({**os.environ, **env})
    folder = profiles_dir()
    outputs = read_profile(str(folder))["basketcast"]["outputs"]
    if target not in outputs:
        raise SparkTargetError(f"{folder / 'profiles.yml'} has no output {target!r}")
    return ProfileRenderer({}).render_data(outputs[target])


def session(paths: Paths) -> SparkSession:
    """This process's Spark session on the catalog of `paths` (started when there is none).

    With `method: session` (Spark in this process, the local default) the settings are the
    `spark` profile output's `server_side_parameters`, so the session is the one dbt-spark
    starts and finds the tables dbt built. A profile that reaches a cluster (`method: thrift`
    or `http`) gives Python no session to share: the session is then the one Feast's Spark
    offline store opens from `feature_repo/feature_store.spark.yaml` (`spark_conf`, which a
    cluster deployment points at its master and metastore), so every Python step reads the
    catalog dbt built through one set of settings. Raises SparkTargetError when this process
    already runs a session on another home's catalog.
    """
    from pyspark.sql import SparkSession

    output = profile_output(paths)
    if output.get("method") == "session":
        settings = {**output.get("server_side_parameters", {}), **SESSION_SETTINGS}
        builder = SparkSession.builder.enableHiveSupport()
        for key, value in settings.items():
            builder = builder.config(key, str(value))
        spark = builder.getOrCreate()
    else:
        from ml_jobs import features, features_spark

        config = features.feature_store(paths, offline=SPARK_TARGET).config
        settings = dict(config.offline_store.spark_conf or {})
        spark = features_spark.spark_session(config)
        for key, value in SESSION_SETTINGS.items():
            spark.conf.set(key, value)
    wanted = str(settings.get("spark.sql.warehouse.dir", ""))
    running = str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    if wanted and running.rstrip("/") != wanted.rstrip("/"):
        raise SparkTargetError(
            f"this process's Spark session keeps its catalog under {running}, not {wanted}: "
            "Spark fixes the catalog when it starts, so run the steps of each basketcast home "
            "in a process of its own"
        )
    return spark


def query(spark: SparkSession, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one Spark SQL query, as tuples."""
    return [tuple(row) for row in spark.sql(sql).collect()]


def table_columns(spark: SparkSession, qualified: str) -> list[tuple[str, str]] | None:
    """(name, Spark type) of each column of a catalog table; None when it does not exist."""
    if not spark.catalog.tableExists(qualified):
        return None
    return [(f.name, f.dataType.simpleString()) for f in spark.table(qualified).schema.fields]


def _location(spark: SparkSession, qualified: str) -> str:
    rows = spark.sql(f"describe table extended {qualified}").collect()
    return next(str(r["data_type"]) for r in rows if r["col_name"] == "Location")


def _delete_folder(spark: SparkSession, folder: str) -> None:
    jvm = spark.sparkContext._jvm  # the Hadoop file system Spark writes through
    path = jvm.org.apache.hadoop.fs.Path(folder)
    path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)


def replace_table(spark: SparkSession, qualified: str, rows: DataFrame) -> int:
    """Make the catalog table `qualified` hold exactly `rows`; readers see old or new rows.

    The rows go to a new folder beside the table's earlier ones; the table then points at it
    (one catalog update) and the previous folder is deleted. A table whose columns differ
    from `rows` is dropped and created again with them. Returns the rows written.
    """
    schema, name = qualified.split(".")
    spark.sql(f"create database if not exists {schema}")
    base = spark.catalog.getDatabase(schema).locationUri.rstrip("/") + f"/{name}"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = f"{base}/v{stamp}-{uuid.uuid4().hex[:8]}"
    rows = rows.cache()
    count = rows.count()
    rows.write.parquet(folder)
    rows.unpersist()
    columns = [(f.name, f.dataType.simpleString()) for f in rows.schema.fields]
    existing = table_columns(spark, qualified)
    previous = _location(spark, qualified) if existing is not None else None
    if existing is not None and existing != columns:
        spark.sql(f"drop table {qualified}")
        existing = None
    if existing is None:
        ddl = ", ".join(f"{column} {kind}" for column, kind in columns)
        spark.sql(f"create table {qualified} ({ddl}) using parquet location '{folder}'")
    else:
        spark.sql(f"alter table {qualified} set location '{folder}'")
        spark.sql(f"refresh table {qualified}")
    # Only folders this function wrote are removed (an earlier version of the table).
    if previous is not None and previous.startswith(base + "/") and previous != folder:
        _delete_folder(spark, previous)
    return count


def prediction_columns(table: str) -> list[tuple[str, str]]:
    """(name, Spark type) of a prediction table, in the column order of the DuckDB table."""
    if table not in PREDICTION_TABLES:
        known = list(PREDICTION_TABLES)
        raise ValueError(f"unknown prediction table {table!r}; expected one of {known}")
    definitions = f"{RUN_COLUMNS},{PREDICTION_TABLES[table]}".split(",")
    parts = [d.split() for d in definitions]
    return [(p[0], SPARK_TYPES[p[1].upper()]) for p in parts]


def to_spark(spark: SparkSession, frame: pd.DataFrame, columns: list[tuple[str, str]]) -> DataFrame:
    """`frame`'s `columns` as a Spark DataFrame with exactly those Spark types.

    Dates become dates, timestamps UTC instants, whole numbers nullable integers, so Arrow
    carries them across unchanged whatever pandas dtype they arrived in.
    """
    converted: dict[str, object] = {}
    for column, kind in columns:
        values = frame[column]
        if kind == "date":
            converted[column] = pd.to_datetime(values).dt.date
        elif kind == "timestamp":
            converted[column] = pd.to_datetime(values, utc=True)
        elif kind in ("int", "bigint"):
            converted[column] = values.astype("Int32" if kind == "int" else "Int64")
        else:
            converted[column] = values
    ddl = ", ".join(f"{column} {kind}" for column, kind in columns)
    return spark.createDataFrame(pd.DataFrame(converted), schema=ddl)


def write_predictions(spark: SparkSession, table: str, frame: pd.DataFrame) -> int:
    """Replace the rows of each (run_id, as_of_date) in `frame` in `predictions.<table>`.

    Same contract as `ml_jobs.warehouse.write_predictions`: `frame` holds the table's columns,
    rewriting a run and as-of date replaces its rows, and readers see the previous content or
    the new one. Also (re)creates the table's `_latest` view once `ml.model_runs` is on Spark.
    Returns rows written.
    """
    columns = prediction_columns(table)
    defaults = ADDED_COLUMNS.get(table, {})
    frame = frame.assign(**{c: v for c, v in defaults.items() if c not in frame.columns})
    missing = sorted({c for c, _ in columns} - set(frame.columns))
    if missing:
        raise ValueError(f"predictions.{table}: frame lacks columns {missing}")
    incoming = to_spark(spark, frame, columns)
    qualified = f"predictions.{table}"
    if table_columns(spark, qualified) is None:
        rows = incoming
    else:
        keys = incoming.select("run_id", "as_of_date").distinct()
        kept = spark.table(qualified).join(keys, ["run_id", "as_of_date"], "left_anti")
        rows = kept.select(*[c for c, _ in columns]).unionByName(incoming)
    replace_table(spark, qualified, rows)
    if spark.catalog.tableExists("ml.model_runs"):  # the view reads the registry
        spark.sql(latest_view(table))
    return len(frame)


def latest_view(table: str) -> str:
    """The `_latest` view of `ml_jobs.warehouse`, its columns listed in the table's order."""
    return latest_view_sql(table, [column for column, _ in prediction_columns(table)])


def _blocks(rows: pd.DataFrame) -> dict[tuple[str, str], tuple[int, str]]:
    """(run_id, as_of_date) -> (rows, newest predicted_at): what tells two copies apart."""
    stamps = pd.to_datetime(rows["predicted_at"])
    stamps = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
    days = pd.to_datetime(rows["as_of_date"]).dt.date.astype(str)
    return {
        (str(run), day): (int(n), str(stamp))
        for run, day, n, stamp in zip(rows["run_id"], days, rows["n"], stamps, strict=True)
    }


BLOCKS_SQL = """select run_id, as_of_date, count(*) as n, max(predicted_at) as predicted_at
    from predictions.{table} group by run_id, as_of_date"""


def _new_metric_runs(
    con: Any, spark: SparkSession
) -> tuple[pd.DataFrame, list[tuple[str, str]]] | None:
    """The rows of `ml.backtest_metrics` whose run is not on Spark yet, with the table's
    Spark columns; None when there are none. A run's backtest metrics never change."""
    if not table_exists(con, "ml.backtest_metrics"):
        return None
    columns = [
        (name, SPARK_TYPES[kind.upper()])
        for name, kind, *_ in con.execute("describe ml.backtest_metrics").fetchall()
    ]
    remote: list[str] = []
    if table_columns(spark, "ml.backtest_metrics") is not None:
        remote = [r[0] for r in query(spark, "select distinct run_id from ml.backtest_metrics")]
    con.register("published_runs", pd.DataFrame({"run_id": remote}, dtype="object"))
    rows = con.execute(
        """select * from ml.backtest_metrics
           where run_id not in (select run_id from published_runs)"""
    ).df()
    con.unregister("published_runs")
    return (rows, columns) if len(rows) else None


def _append_metrics(spark: SparkSession, rows: pd.DataFrame, columns: list[tuple[str, str]]) -> int:
    """Add new runs' backtest metrics to `ml.backtest_metrics` on Spark (atomic replace)."""
    incoming = to_spark(spark, rows, columns)
    if table_columns(spark, "ml.backtest_metrics") is not None:
        kept = spark.table("ml.backtest_metrics").select(*[c for c, _ in columns])
        incoming = kept.unionByName(incoming)
    replace_table(spark, "ml.backtest_metrics", incoming)
    return len(rows)


def publish_predictions(paths: Paths, spark: SparkSession) -> dict[str, int]:
    """Copy what changed in warehouse.duckdb's prediction tables and registry to Spark.

    Every prediction block (run_id, as_of_date) whose row count or newest `predicted_at`
    differs on Spark is replaced there; `ml.model_runs` is replaced whole (it is small, and
    champions change); the backtest metrics of runs Spark has not seen are added to
    `ml.backtest_metrics`; each table gets its `_latest` view. Returns rows written per table.
    """
    from ml_jobs.pipeline import MissingInputError

    written: dict[str, int] = {}
    with connect(paths.warehouse, read_only=True) as con:
        if not table_exists(con, "ml.model_runs"):
            raise MissingInputError(
                f"no model registry in {paths.warehouse}: predict (or train) before publishing "
                "predictions to Spark"
            )
        described = con.execute("describe ml.model_runs").fetchall()
        registry = con.execute("select * from ml.model_runs").df()
        changes: dict[str, pd.DataFrame] = {}
        for table in PREDICTION_TABLES:
            qualified = f"predictions.{table}"
            if not table_exists(con, qualified):
                changes[table] = pd.DataFrame(columns=[c for c, _ in prediction_columns(table)])
                continue
            local = _blocks(con.execute(BLOCKS_SQL.format(table=table)).df())
            remote = {}
            if table_columns(spark, qualified) is not None:
                remote = _blocks(spark.sql(BLOCKS_SQL.format(table=table)).toPandas())
            stale = [key for key, version in local.items() if remote.get(key) != version]
            if not stale:
                continue
            keys = pd.DataFrame(stale, columns=["run_id", "as_of_date"], dtype="object")
            con.register("stale_blocks", keys)
            changes[table] = con.execute(
                f"""select p.* from {qualified} p join stale_blocks k
                    on p.run_id = k.run_id and cast(p.as_of_date as varchar) = k.as_of_date"""
            ).df()
            con.unregister("stale_blocks")
        metrics = _new_metric_runs(con, spark)
    registry_columns = [(name, SPARK_TYPES[kind.upper()]) for name, kind, *_ in described]
    written["ml.model_runs"] = replace_table(
        spark, "ml.model_runs", to_spark(spark, registry, registry_columns)
    )
    if metrics is not None:
        written["ml.backtest_metrics"] = _append_metrics(spark, *metrics)
    for table, rows in changes.items():
        exists = table_columns(spark, f"predictions.{table}") is not None
        if len(rows) or not exists:
            written[f"predictions.{table}"] = write_predictions(spark, table, rows)
        spark.sql(latest_view(table))
    return written
