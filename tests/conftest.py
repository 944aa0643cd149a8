"""Shared test set-up: telemetry off, and a private basketcast home per test or module."""

from __future__ import annotations

import os
import tempfile
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
