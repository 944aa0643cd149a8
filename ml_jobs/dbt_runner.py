"""Run the dbt project in this process, pointed at one basketcast home.

dbt reads its profile and sources from environment variables (BASKETCAST_HOME, and
BASKETCAST_WAREHOUSE for the DuckDB file), so a run sets them for its own duration and puts
back what was there before. The feature exports need their folder to exist before DuckDB
writes to it, so a run creates it first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ml_jobs.config import DBT_PROJECT_DIR, Paths, profiles_dir, quiet_environment

# Node statuses that make a run fail (dbt's RunStatus and TestStatus values).
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})

CONSUMERS_SELECTOR = "tag:consumers"
# Targets whose builds run the data tests but leave the unit tests out: dbt runs a unit test by
# wrapping the model's query in a subquery, and Spark takes no WITH there. The unit tests check
# the models' logic on fixtures, which the DuckDB builds (and CI) run.
NO_UNIT_TEST_TARGETS = frozenset({"spark"})


class DbtError(RuntimeError):
    """A dbt command failed; the message names every failing node and what it said."""

    def __init__(self, command: Sequence[str], failures: Sequence[str]) -> None:
        self.command = list(command)
        self.failures = list(failures)
        lines = "\n".join(f"  - {failure}" for failure in self.failures)
        super().__init__(f"dbt {' '.join(self.command)} failed:\n{lines}")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failures(result: object) -> list[str]:
    """'node [status]: message' for every node of a dbt result that errored or failed, then
    one line naming the nodes skipped because of them."""
    failures: list[str] = []
    skipped: list[str] = []
    for node_result in getattr(result, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        node = getattr(node_result, "node", None)
        name = getattr(node, "unique_id", None) or getattr(node, "name", "?")
        if status == "skipped":
            skipped.append(name)
        elif status in FAILED_STATUSES:
            message = (getattr(node_result, "message", None) or "").strip()
            failures.append(f"{name} [{status}]: {message}" if message else f"{name} [{status}]")
    if failures and skipped:
        failures.append(f"skipped because of the failures above: {', '.join(skipped)}")
    return failures


def run_dbt(
    args: list[str],
    paths: Paths,
    *,
    quiet: bool = True,
    target: str | None = None,
    variables: dict[str, object] | None = None,
) -> None:
    """Run one dbt command (e.g. ``["build", "--select", "marts"]``) against `paths`.

    `target` picks a profile output (``duckdb`` by default, ``postgres``); `variables` are
    passed as ``--vars``. dbt keeps its parse between runs (target/partial_parse.msgpack) as
    long as the vars stay the same: a run with different `variables` re-parses the whole
    project (seconds), so scheduled runs should pass the same ones every time. Raises DbtError
    naming the failing nodes and their messages when the command fails.
    """
    from dbt.cli.main import dbtRunner

    quiet_environment()
    paths.exports.mkdir(parents=True, exist_ok=True)
    project = str(DBT_PROJECT_DIR)
    command = [*args, "--project-dir", project, "--profiles-dir", str(profiles_dir())]
    if target:
        command += ["--target", target]
    if variables:
        command += ["--vars", json.dumps(variables)]
    if quiet:
        command.append("--quiet")
    env = {"BASKETCAST_HOME": str(paths.home), "BASKETCAST_WAREHOUSE": str(paths.warehouse)}
    with _environment(env):
        outcome = dbtRunner().invoke(command)
    if outcome.success:
        return
    failures = _failures(outcome.result)
    if outcome.exception is not None:
        failures.append(f"{type(outcome.exception).__name__}: {outcome.exception}")
    raise DbtError(args, failures or ["dbt reported failure without a failing node"])


def build_warehouse(
    paths: Paths,
    *,
    quiet: bool = True,
    target: str | None = None,
    full_refresh: bool = False,
    variables: dict[str, object] | None = None,
) -> None:
    """dbt build of staging, marts and the feature exports: everything but the consumer marts.

    Events load incrementally (the newest days again, see `events_lookback_days`);
    `full_refresh` rebuilds them from all raw files.
    """
    args = warehouse_build_args(target=target, full_refresh=full_refresh)
    run_dbt(args, paths, quiet=quiet, target=target, variables=variables)


def warehouse_build_args(*, target: str | None = None, full_refresh: bool = False) -> list[str]:
    """The `dbt build` arguments of the warehouse build on `target`."""
    args = ["build", "--exclude", CONSUMERS_SELECTOR, *_unit_tests_left_out(target)]
    if full_refresh:
        args.append("--full-refresh")
    return args


def build_consumers(paths: Paths, *, quiet: bool = True, target: str | None = None) -> None:
    """dbt build of the consumer marts, which read the `predictions.*_latest` views."""
    args = ["build", "--select", CONSUMERS_SELECTOR]
    if excluded := _unit_tests_left_out(target):
        args += ["--exclude", *excluded]
    run_dbt(args, paths, quiet=quiet, target=target)


def _unit_tests_left_out(target: str | None) -> list[str]:
    """The selector that leaves unit tests out of a build on `target` (or the profile's
    default, BASKETCAST_DBT_TARGET), where they cannot run; none elsewhere."""
    resolved = target or os.environ.get("BASKETCAST_DBT_TARGET") or "duckdb"
    return ["test_type:unit"] if resolved in NO_UNIT_TEST_TARGETS else []
