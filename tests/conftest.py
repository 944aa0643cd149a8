"""Shared test set-up: telemetry off, a private basketcast home per test or module, and the
one Spark build of a small shop that the Spark test modules share.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_jobs.config import Paths, quiet_environment

quiet_environment()
# Airflow reads its home when first imported: keep tests away from ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="basketcast-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """An empty basketcast home for one test, exported as BASKETCAST_HOME."""
    monkeypatch.setenv("BASKETCAST_HOME", str(tmp_path / "home"))
    return Paths.from_env()


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """An empty basketcast home shared by the tests of one module (for expensive builds)."""
    folder = tmp_path_factory.mktemp("home")
    previous = os.environ.get("BASKETCAST_HOME")
    os.environ["BASKETCAST_HOME"] = str(folder)
    yield Paths(folder)
    if previous is None:
        os.environ.pop("BASKETCAST_HOME", None)
    else:
        os.environ["BASKETCAST_HOME"] = previous


@pytest.fixture(scope="session")
def spark_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    """A 40-user shop built on DuckDB and on Spark (`dbt run --target spark`), once per run.

    It has 12 items: the user models that test_dbt_spark.py trains on it rank the top 10.

    Every test module that needs the Spark build shares this one: the build costs minutes, and
    it cannot differ per module anyway. dbt-spark's `method: session` starts Spark inside this
    process and leaves the session running; Spark keeps one session per process and fixes its
    catalog (warehouse folder, Derby metastore under this home) when the JVM starts, so every
    later Spark use in the process - Feast's Spark offline store included, which takes the
    running session - sees this home's tables. A second home would silently get this catalog,
    and a second process could not open the Derby metastore while this one holds it.
    """
    from ml_jobs import dbt_runner
    from ml_jobs.generate import ShopConfig, generate_shop

    home = Paths(tmp_path_factory.mktemp("spark-home"))
    folder = tmp_path_factory.mktemp("spark-dbt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(folder / "target"))
        patch.setenv("DBT_LOG_PATH", str(folder / "logs"))
        generate_shop(ShopConfig(users=40, items=12, days=20), home)
        dbt_runner.build_warehouse(home)
        dbt_runner.run_dbt(["run", "--exclude", "tag:consumers"], home, target="spark")
        yield home
