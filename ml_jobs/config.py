"""Where basketcast keeps its files, and the switches that keep third-party libraries quiet.

Everything lives under one folder, ``$BASKETCAST_HOME`` (default ``./.basketcast``):

    raw/<table>/*.parquet          raw input contract (generator or ingest adapters write here)
    truth/item_daily_demand/       true expected demand (synthetic data only)
    warehouse.duckdb               the DuckDB warehouse dbt builds and ml_jobs writes back to
    exports/<table>/<YYYY-MM>.parquet  feature tables dbt exports for Feast's offline store,
                                   one file per month of snapshots (read as a glob)
    feast/                         Feast registry and SQLite online store
    artifacts/<run_id>/            trained model files
    airflow/                       throwaway Airflow home for local DAG runs
    tmp/                           where in-memory DuckDB reads spill past their memory limit
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(os.environ.get("BASKETCAST_PROJECT_ROOT", Path(__file__).resolve().parents[1]))
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
FEATURE_REPO_DIR = REPO_ROOT / "feature_repo"


def profiles_dir() -> Path:
    """The folder of the profiles.yml dbt and ml_jobs read: DBT_PROFILES_DIR (dbt's own
    variable, e.g. a deployment's profile for its Spark cluster), else dbt_project/."""
    return Path(os.environ.get("DBT_PROFILES_DIR") or DBT_PROJECT_DIR)


DAGS_DIR = REPO_ROOT / "dags"

RAW_TABLES = ("events", "order_lines", "items", "reviews", "inventory_snapshots", "promotions")
# Raw tables a shop may leave out (docs/contracts.md): dbt builds their models empty then.
OPTIONAL_RAW_TABLES = ("campaigns",)

# Airflow pools the DAGs use: DuckDB takes one writer per file, so warehouse writers share a
# single slot; training gets one slot per GPU. Created by the local runner and `make airflow`.
WAREHOUSE_POOL = "basketcast_warehouse"
GPU_POOL = "basketcast_gpu"
AIRFLOW_POOLS = {
    WAREHOUSE_POOL: (1, "DuckDB has one writer per file: warehouse writers run one at a time"),
    GPU_POOL: (1, "Model training; one slot per GPU"),
}

# Nothing here may wait on the network: the libraries' usage tracking is switched off.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "FEAST_USAGE": "False",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
}


def quiet_environment() -> None:
    """Turn off telemetry of dbt, Feast, Airflow and cosmos for this process and its children."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@dataclass(frozen=True)
class Paths:
    """The file layout under one basketcast home folder."""

    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(Path(os.environ.get("BASKETCAST_HOME", ".basketcast")).resolve())

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    def raw_table(self, table: str) -> Path:
        return self.raw / table

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    def export_dir(self, table: str) -> Path:
        """Folder of one feature export: one Parquet file per month of feature_ts."""
        return self.exports / table

    def export_files(self, table: str) -> str:
        """Glob of one feature export's Parquet files, as DuckDB and Feast read it."""
        return str(self.export_dir(table) / "*.parquet")

    @property
    def feast(self) -> Path:
        return self.home / "feast"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def airflow(self) -> Path:
        return self.home / "airflow"

    @property
    def scratch(self) -> Path:
        return self.home / "tmp"

    def env(self) -> dict[str, str]:
        """Environment that points dbt, Feast and Airflow tasks at this home."""
        return {"BASKETCAST_HOME": str(self.home)}
