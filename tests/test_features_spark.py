"""Point-in-time training reads through Feast's Spark offline store equal the DuckDB ones.

The shop of conftest's `spark_shop` is built on DuckDB (Parquet exports) and on Spark (tables
marts.user_features / marts.item_features in the Spark catalog). The same entity dataframe -
every entity plus an unknown id, at cutoffs before, on, between and after the snapshot days -
is read through ``historical_features`` (``filter_by_created_timestamp=True``) once with the
DuckDB offline store over the exports and once with the Spark offline store
(feature_store.spark.yaml) over the Spark tables: the rows must be the same, floats within
1e-9. Skipped when pyspark or Java is missing.

Feast's Spark store takes the Spark session dbt-spark left running in this process (see the
fixture's docstring), so it reads the catalog dbt built the tables in; the last test checks
that feature_store.spark.yaml names that same catalog, which a fresh process starts from.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from ml_jobs import features
from ml_jobs.config import FEATURE_REPO_DIR, Paths

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)

# entity -> (join key, a user and an item feature service reading its whole view)
ENTITIES = {"user": ("user_id", "propensity_v2"), "item": ("item_id", "demand_v2")}


@pytest.fixture(scope="module")
def applied(spark_shop: Paths) -> Paths:
    """Both registries filled: the DuckDB one over the exports, the Spark one over the tables."""
    features.apply(spark_shop)
    features.apply(spark_shop, offline="spark")
    return spark_shop


def entity_frame(paths: Paths, entity: str) -> pd.DataFrame:
    """Every exported entity and one unknown id, at cutoffs taken from the snapshot days."""
    join_key = ENTITIES[entity][0]
    snapshots = features.latest_offline_values(paths, entity, None)
    ids = [*snapshots[join_key].astype("int64"), int(snapshots[join_key].max()) + 1000]
    files = paths.export_files(features.EXPORTS[entity][1])
    with duckdb.connect() as con:
        stamps = con.execute(
            f"select distinct {features.TIMESTAMP_FIELD} from read_parquet(?)", [files]
        ).df()
    days = sorted(pd.to_datetime(stamps[features.TIMESTAMP_FIELD], utc=True))
    cutoffs = [days[0] - timedelta(days=1), days[-1] + timedelta(days=3)]
    for day in days:  # on a snapshot (feature_ts <= t holds with equality) and half a day on
        cutoffs += [day, day + timedelta(hours=13)]
    rows = [(i, t) for t in cutoffs for i in ids]
    return pd.DataFrame(rows, columns=[join_key, "event_timestamp"])


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_spark_training_read_equals_duckdb(applied: Paths, entity: str) -> None:
    service = ENTITIES[entity][1]
    entity_df = entity_frame(applied, entity)
    duck = features.historical_features(applied, entity_df, service)
    spark = features.historical_features(applied, entity_df, service, offline="spark")

    assert list(spark.columns) == list(duck.columns)
    assert len(spark) == len(duck) == len(entity_df)
    for column in entity_df.columns:
        pd.testing.assert_series_equal(spark[column], duck[column], check_dtype=False)
    names = [c for c in duck.columns if c not in entity_df.columns]
    # Not a comparison of two empty reads: most rows found a snapshot, the early ones none.
    found = duck[names].notna().any(axis=1)
    assert found.mean() > 0.5 and not found.all()
    np.testing.assert_allclose(
        spark[names].to_numpy(), duck[names].to_numpy(), rtol=1e-9, atol=1e-9, equal_nan=True
    )


def test_spark_yaml_names_the_catalog_dbt_built(applied: Paths) -> None:
    from ml_jobs.features_spark import spark_session

    store = features.feature_store(applied, offline="spark")
    path = FEATURE_REPO_DIR / "feature_store.spark.yaml"
    text = path.read_text().replace("${BASKETCAST_HOME}", str(applied.home))
    spark_conf = yaml.safe_load(text)["offline_store"]["spark_conf"]
    running = spark_session(store.config).sparkContext.getConf()
    for key in (
        "spark.sql.catalogImplementation",
        "spark.sql.warehouse.dir",
        "spark.hadoop.javax.jdo.option.ConnectionURL",
        "spark.sql.session.timeZone",
    ):
        # Spark qualifies a local warehouse path as file:<path>.
        assert str(running.get(key)).removeprefix("file:") == spark_conf[key], key
