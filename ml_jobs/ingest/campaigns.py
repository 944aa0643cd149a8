"""The optional raw table `campaigns`: which user received which marketing campaign, and when.

One row per (campaign, user): campaign_id, user_id, campaign_type, start_date, end_date (both
inclusive). Shops without campaign data have no `raw/campaigns/` folder at all; dbt then builds
the campaign models empty (docs/contracts.md). Staging quarantines bad rows, as for the other
raw tables.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_jobs.config import Paths
from ml_jobs.generate.writer import clear_parquet
from ml_jobs.ingest.raw_output import to_arrow

CAMPAIGNS = "campaigns"
CAMPAIGN_SCHEMA = pa.schema(
    [
        pa.field("campaign_id", pa.int64()),
        pa.field("user_id", pa.int64()),
        pa.field("campaign_type", pa.string()),
        pa.field("start_date", pa.date32()),
        pa.field("end_date", pa.date32()),
    ]
)


def write_campaigns(paths: Paths, frame: pd.DataFrame) -> int:
    """Replace `raw/campaigns/` with `frame` (the schema's columns); return rows written."""
    table = to_arrow(frame, CAMPAIGNS, CAMPAIGN_SCHEMA)
    folder = paths.raw_table(CAMPAIGNS)
    clear_parquet(folder)
    pq.write_table(table, folder / "part-00000.parquet", compression="zstd")
    return table.num_rows
