"""Model registry in the warehouse: runs, backtest scores and champion/challenger promotion.

Every training run is a row of `ml.model_runs` (status running -> succeeded | failed), its
rolling-origin scores are rows of `ml.backtest_metrics`, and exactly one succeeded run per
prediction product is the champion that the product's `_latest` view serves.

A run records the host and process that runs it. A job killed outright (kill -9, out of memory,
a lost machine) cannot close its own row, so every `start_run` first closes abandoned runs as
`failed`: those whose process on this host is gone, and those of any host still `running` after
`BASKETCAST_STALE_RUN_HOURS` (default 24) hours.

A prediction product is a prediction table (`item_demand_forecast`, ...): a run belongs to the
product whose table holds its forecasts, so all item demand models (baselines, XGBoost, torch)
compete for one champion seat. A challenger takes the seat only when its mean backtest pinball
loss beats the champion model's on the same cutoffs. The first run of a product takes the empty
seat, and a newer run of the champion model itself takes over the seat (a retrain on fresher
data), so `_latest` never serves stale forecasts of the winning model.

All functions take an open read-write DuckDB connection (see `ml_jobs.warehouse.connect`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml_jobs.config import REPO_ROOT
from ml_jobs.warehouse import PREDICTION_TABLES, table_exists

DEMAND_PRODUCT = "item_demand_forecast"
PROMOTION_METRIC = "pinball_mean"


@dataclass(frozen=True)
class RunRecord:
    """What the registry knows about a run when it starts."""

    run_id: str
    model_name: str
    model_kind: str  # torch | xgboost | baseline
    model_version: str
    train_start: dt.date | None = None
    train_end: dt.date | None = None
    params: dict[str, Any] = field(default_factory=dict)
    feature_service: str | None = None
    artifact_uri: str | None = None
    device: str = "cpu"
    git_sha: str | None = None


@dataclass(frozen=True)
class Promotion:
    """The outcome of one champion/challenger decision."""

    run_id: str
    promoted: bool
    champion_run_id: str | None  # the champion after the decision
    reason: str
    challenger_score: float | None = None
    champion_score: float | None = None


def new_run_id(model_name: str, now: dt.datetime | None = None) -> str:
    """Readable, unique run id: `{model}-{UTC timestamp}-{random suffix}`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{model_name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def git_sha(repo: Path = REPO_ROOT) -> str | None:
    """Commit of the code that trained the model, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


def _json(payload: dict[str, Any] | None) -> str | None:
    """JSON text for the registry; NaN/inf become null, dates become ISO strings."""
    if payload is None:
        return None

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(payload), default=str, sort_keys=True)


def owner_host() -> str:
    """This machine and process namespace: where a pid means this process.

    Two containers can share a host name (host networking) but never a pid namespace, so the
    namespace's id is part of the name when the system exposes it.
    """
    host = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # e.g. "pid:[4026531836]"
    except OSError:
        return host
    return f"{host}/{namespace.removeprefix('pid:').strip('[]')}"


def stale_run_hours() -> float:
    """After how long a `running` run of another host counts as abandoned."""
    return float(os.environ.get("BASKETCAST_STALE_RUN_HOURS", "24"))


def _process_alive(pid: int, since: dt.datetime) -> bool:
    """True while process `pid` of this host lives and is the one started before `since`."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = dt.datetime.fromtimestamp(process.create_time(), dt.UTC)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    # A pid the system handed to a newer process after the run's own one died.
    return started <= since + dt.timedelta(seconds=5)


def fail_abandoned_runs(
    con: duckdb.DuckDBPyConnection, now: dt.datetime | None = None
) -> list[str]:
    """Close as `failed` the `running` runs whose job is gone; returns their run ids.

    A run of this host is abandoned when its process no longer exists; a run of another host
    (or one registered without an owner) when it has been running for longer than
    `stale_run_hours()`. The reason goes to the run's metrics as `error`.
    """
    now = now or dt.datetime.now(dt.UTC)
    host = owner_host()
    running = con.execute(
        """SELECT run_id, owner_host, owner_pid, trained_at FROM ml.model_runs
        WHERE status = 'running'"""
    ).fetchall()
    abandoned: dict[str, str] = {}
    for run_id, run_host, run_pid, trained_at in running:
        age_h = (now - trained_at).total_seconds() / 3600
        if run_host == host and run_pid is not None:
            if not _process_alive(int(run_pid), trained_at):
                abandoned[run_id] = (
                    f"abandoned: process {run_pid} on {host} ended without finishing the run "
                    "(killed?)"
                )
        elif age_h > stale_run_hours():
            where = f"on {run_host}" if run_host else "with no recorded owner"
            abandoned[run_id] = (
                f"abandoned: running {where} for {age_h:.1f} h, longer than "
                f"BASKETCAST_STALE_RUN_HOURS={stale_run_hours():g}"
            )
    for run_id, reason in abandoned.items():
        con.execute(
            """UPDATE ml.model_runs SET status = 'failed', metrics = ?, finished_at = ?
            WHERE run_id = ? AND status = 'running'""",
            [_json({"error": reason}), now, run_id],
        )
    return list(abandoned)


def start_run(con: duckdb.DuckDBPyConnection, record: RunRecord) -> str:
    """Register a run as `running`, owned by this process; returns its run_id.

    Runs that an earlier, killed job left `running` are closed as `failed` first
    (`fail_abandoned_runs`).
    """
    fail_abandoned_runs(con)
    con.execute(
        """INSERT INTO ml.model_runs (run_id, model_name, model_kind, model_version, trained_at,
            train_start, train_end, feature_service, params, metrics, artifact_uri, device,
            git_sha, is_champion, status, owner_host, owner_pid)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, false, 'running', ?, ?)""",
        [
            record.run_id,
            record.model_name,
            record.model_kind,
            record.model_version,
            dt.datetime.now(dt.UTC),
            record.train_start,
            record.train_end,
            record.feature_service,
            _json(record.params),
            record.artifact_uri,
            record.device,
            record.git_sha,
            owner_host(),
            os.getpid(),
        ],
    )
    return record.run_id


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    metrics: dict[str, Any] | None = None,
    artifact_uri: str | None = None,
) -> None:
    """Close a run as `succeeded` or `failed`, storing its headline metrics (or the error)."""
    if status not in ("succeeded", "failed"):
        raise ValueError(f"a run finishes as succeeded or failed, not {status!r}")
    con.execute(
        """UPDATE ml.model_runs
        SET status = ?, metrics = ?, artifact_uri = coalesce(?, artifact_uri), finished_at = ?
        WHERE run_id = ?""",
        [status, _json(metrics), artifact_uri, dt.datetime.now(dt.UTC), run_id],
    )


def write_backtest_metrics(
    con: duckdb.DuckDBPyConnection, run_id: str, metrics: pd.DataFrame
) -> int:
    """Replace a run's rows in `ml.backtest_metrics` (columns of `backtest.METRIC_COLUMNS`)."""
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "model_name": metrics["model_name"].astype(str),
            "cutoff": pd.to_datetime(metrics["cutoff"]),
            "horizon": metrics["horizon"].astype("Int32"),
            "segment": metrics["segment"].astype(str),
            "metric": metrics["metric"].astype(str),
            "value": metrics["value"].astype("float64"),
        }
    )
    con.register("incoming_backtest", frame)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ml.backtest_metrics WHERE run_id = ?", [run_id])
        con.execute(
            """INSERT INTO ml.backtest_metrics
            SELECT run_id, model_name, cutoff::DATE, horizon, segment, metric, value
            FROM incoming_backtest"""
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("incoming_backtest")
    return len(frame)


def _product_table(product: str) -> str:
    if product not in PREDICTION_TABLES:
        raise ValueError(f"unknown prediction product {product!r}")
    return f"predictions.{product}"


def _run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    found = con.execute(
        "SELECT run_id, model_name, status, is_champion FROM ml.model_runs WHERE run_id = ?",
        [run_id],
    ).fetchone()
    if found is None:
        return None
    return dict(zip(("run_id", "model_name", "status", "is_champion"), found, strict=True))


def current_champion(
    con: duckdb.DuckDBPyConnection, product: str = DEMAND_PRODUCT
) -> dict[str, Any] | None:
    """The product's champion run (run_id, model_name, status, is_champion), if any.

    None as well when the registry or the product's table does not exist yet (a fresh warehouse).
    """
    if not (table_exists(con, "ml.model_runs") and table_exists(con, _product_table(product))):
        return None
    found = con.execute(
        f"""SELECT run_id FROM ml.model_runs
        WHERE is_champion AND status = 'succeeded'
          AND run_id IN (SELECT DISTINCT run_id FROM {_product_table(product)})
        ORDER BY trained_at DESC, run_id DESC LIMIT 1"""
    ).fetchone()
    return _run(con, found[0]) if found else None


def backtest_scores(
    con: duckdb.DuckDBPyConnection, run_id: str, metric: str = PROMOTION_METRIC
) -> dict[dt.date, float]:
    """A run's all-items, all-horizons backtest score per cutoff."""
    rows = con.execute(
        """SELECT cutoff, value FROM ml.backtest_metrics
        WHERE run_id = ? AND metric = ? AND segment = 'all' AND horizon IS NULL
          AND value IS NOT NULL""",
        [run_id, metric],
    ).fetchall()
    return {cutoff: float(value) for cutoff, value in rows}


def _crown(con: duckdb.DuckDBPyConnection, run_id: str, product: str) -> None:
    """Make `run_id` the product's only champion, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""UPDATE ml.model_runs SET is_champion = (run_id = $run_id)
            WHERE run_id = $run_id
               OR (is_champion AND run_id IN (SELECT run_id FROM {_product_table(product)}))""",
            {"run_id": run_id},
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _reference_run(
    con: duckdb.DuckDBPyConnection,
    model_name: str,
    cutoffs: set[dt.date],
    product: str,
    metric: str,
) -> tuple[str, dict[dt.date, float]] | None:
    """Newest succeeded run of `model_name` backtested on the most of `cutoffs`."""
    runs = con.execute(
        f"""SELECT run_id FROM ml.model_runs
        WHERE model_name = ? AND status = 'succeeded'
          AND run_id IN (SELECT DISTINCT run_id FROM {_product_table(product)})
        ORDER BY trained_at DESC, run_id DESC""",
        [model_name],
    ).fetchall()
    best: tuple[str, dict[dt.date, float]] | None = None
    for (candidate,) in runs:
        scores = backtest_scores(con, candidate, metric)
        shared = {c: v for c, v in scores.items() if c in cutoffs}
        if shared and (best is None or len(shared) > len(best[1])):
            best = (candidate, shared)
    return best


def promote_if_better(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    product: str = DEMAND_PRODUCT,
    metric: str = PROMOTION_METRIC,
) -> Promotion:
    """Champion/challenger: crown `run_id` if it beats the product's champion on the backtest.

    The challenger must have succeeded and written its forecasts to the product's table. It is
    compared with the champion's model on the cutoffs both were backtested on (the champion
    model's newest run that shares them); lower mean `metric` wins, ties keep the champion.
    """
    challenger = _run(con, run_id)
    if challenger is None or challenger["status"] != "succeeded":
        raise ValueError(f"run {run_id!r} has not succeeded and cannot be promoted")
    table = _product_table(product)
    has_rows = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()
    if not has_rows or not has_rows[0]:
        raise ValueError(f"run {run_id!r} has no forecasts in {table}")

    champion = current_champion(con, product)
    if champion is None:
        _crown(con, run_id, product)
        return Promotion(run_id, True, run_id, "first champion of the product")
    if champion["run_id"] == run_id:
        return Promotion(run_id, False, run_id, "already the champion")
    if champion["model_name"] == challenger["model_name"]:
        _crown(con, run_id, product)
        return Promotion(run_id, True, run_id, "newer run of the champion model")

    mine = backtest_scores(con, run_id, metric)
    reference = _reference_run(con, champion["model_name"], set(mine), product, metric)
    if reference is None:
        reason = f"no backtest of {champion['model_name']} on the same cutoffs: champion kept"
        return Promotion(run_id, False, champion["run_id"], reason)
    reference_run, theirs = reference
    shared = sorted(theirs)
    challenger_score = sum(mine[c] for c in shared) / len(shared)
    champion_score = sum(theirs[c] for c in shared) / len(shared)
    detail = f"{metric} {challenger_score:.4f} vs {champion_score:.4f} on {len(shared)} cutoffs"
    scores = {"challenger_score": challenger_score, "champion_score": champion_score}
    if challenger_score < champion_score:
        _crown(con, run_id, product)
        return Promotion(run_id, True, run_id, f"beats {reference_run}: {detail}", **scores)
    reason = f"does not beat {reference_run}: {detail}"
    return Promotion(run_id, False, champion["run_id"], reason, **scores)
