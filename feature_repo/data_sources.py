"""basketcast data sources: the feature snapshots dbt exports as Parquet.

dbt builds marts.user_features / marts.item_features and exports them (a view and a COPY
post-hook) to $BASKETCAST_HOME/exports/<table>/<YYYY-MM>.parquet, one file per month of
snapshots, so a daily load rewrites only its month; each source reads the folder's files
through a glob. Each row is one daily snapshot of one entity:

- feature_ts (event timestamp): the snapshot date D at 00:00 UTC; it uses only data from
  before D, so it is what was knowable at feature_ts.
- created_ts: when that row's values became available. A late backfill re-issues a snapshot
  with the same feature_ts and a later created_ts; point-in-time training reads pass
  filter_by_created_timestamp=True so a value is used only once it existed.

The path is resolved from BASKETCAST_HOME when this module is imported (the Feast CLI and
ml_jobs.features both import it with BASKETCAST_HOME set).

With BASKETCAST_OFFLINE_STORE=spark (feature_store.spark.yaml) the same two sources read the
tables `dbt run --target spark` builds, marts.user_features / marts.item_features, through
Feast's Spark offline store instead; the views and services stay the same. Unset (the
default), nothing here imports Spark.
"""

import os
from pathlib import Path

from feast import FileSource
from feast.data_format import ParquetFormat

# The export folder, same layout as ml_jobs.config.Paths.exports.
EXPORTS_DIR = Path(os.environ.get("BASKETCAST_HOME", ".basketcast")).resolve() / "exports"

# Daily user snapshots: windowed activity counts, RFM and funnel rates per shopper.
user_features_source = FileSource(
    name="user_features_source",
    path=str(EXPORTS_DIR / "user_features" / "*.parquet"),
    file_format=ParquetFormat(),
    timestamp_field="feature_ts",
    created_timestamp_column="created_ts",
    description="Daily user feature snapshots exported by dbt (marts.user_features).",
)

# Daily item snapshots: windowed demand, funnel, price, promotion and review features per item.
item_features_source = FileSource(
    name="item_features_source",
    path=str(EXPORTS_DIR / "item_features" / "*.parquet"),
    file_format=ParquetFormat(),
    timestamp_field="feature_ts",
    created_timestamp_column="created_ts",
    description="Daily item feature snapshots exported by dbt (marts.item_features).",
)

# Which offline store the sources are read by: "duckdb" (default, the Parquet exports above)
# or "spark". ml_jobs.features sets it from its `offline=` argument; on the command line export
# it together with `-f feature_store.spark.yaml`.
OFFLINE_STORE = os.environ.get("BASKETCAST_OFFLINE_STORE", "duckdb")

if OFFLINE_STORE == "spark":
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    # The Spark build of the user snapshots: a Parquet table in the Spark catalog (locally the
    # Derby metastore under $BASKETCAST_HOME, on a cluster its own metastore). Same name,
    # columns and timestamps as the export, so the feature views read it unchanged.
    user_features_source = SparkSource(
        name="user_features_source",
        table="marts.user_features",
        timestamp_field="feature_ts",
        created_timestamp_column="created_ts",
        description="Daily user feature snapshots built by dbt on Spark (marts.user_features).",
    )

    # The Spark build of the item snapshots (marts.item_features).
    item_features_source = SparkSource(
        name="item_features_source",
        table="marts.item_features",
        timestamp_field="feature_ts",
        created_timestamp_column="created_ts",
        description="Daily item feature snapshots built by dbt on Spark (marts.item_features).",
    )
elif OFFLINE_STORE != "duckdb":
    raise ValueError(f"BASKETCAST_OFFLINE_STORE must be duckdb or spark, got {OFFLINE_STORE!r}")
