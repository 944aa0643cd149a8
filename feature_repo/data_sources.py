"""basketcast data sources: the feature snapshots dbt exports as Parquet.

dbt builds marts.user_features / marts.item_features and exports them (a view and a COPY
post-hook) to $BASKETCAST_HOME/exports/<table>.parquet. Each row is one daily snapshot of one
entity:

- feature_ts (event timestamp): the snapshot date D at 00:00 UTC; it uses only data from
  before D, so it is what was knowable at feature_ts.
- created_ts: when that row's values became available. A late backfill re-issues a snapshot
  with the same feature_ts and a later created_ts; point-in-time training reads pass
  filter_by_created_timestamp=True so a value is used only once it existed.

The path is resolved from BASKETCAST_HOME when this module is imported (the Feast CLI and
ml_jobs.features both import it with BASKETCAST_HOME set).
"""

import os
from pathlib import Path

from feast import FileSource

# The export folder, same layout as ml_jobs.config.Paths.exports.
EXPORTS_DIR = Path(os.environ.get("BASKETCAST_HOME", ".basketcast")).resolve() / "exports"

# Daily user snapshots: windowed activity counts, RFM and funnel rates per shopper.
user_features_source = FileSource(
    name="user_features_source",
    path=str(EXPORTS_DIR / "user_features.parquet"),
    timestamp_field="feature_ts",
    created_timestamp_column="created_ts",
    description="Daily user feature snapshots exported by dbt (marts.user_features).",
)

# Daily item snapshots: windowed demand, funnel, price, promotion and review features per item.
item_features_source = FileSource(
    name="item_features_source",
    path=str(EXPORTS_DIR / "item_features.parquet"),
    timestamp_field="feature_ts",
    created_timestamp_column="created_ts",
    description="Daily item feature snapshots exported by dbt (marts.item_features).",
)
