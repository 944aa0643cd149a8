"""Run a basketcast DAG on this machine through Airflow's `dag.test()`, with no servers.

Airflow keeps its metadata in a throwaway SQLite file under `$BASKETCAST_HOME/airflow`. The run
happens in a child process so that Airflow reads this configuration before it is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_jobs.config import AIRFLOW_POOLS, DAGS_DIR, QUIET_ENV, Paths


class DagRunFailed(RuntimeError):
    """The DAG run ended in a state other than success."""


def airflow_env(paths: Paths) -> dict[str, str]:
    """Environment for an Airflow process whose home and metadata live under `paths`."""
    home = paths.airflow
    return {
        **os.environ,
        **QUIET_ENV,
        **paths.env(),
        "AIRFLOW_HOME": str(home),
        # Airflow starts its own `airflow ...` sub-processes: they must come from this venv.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "basketcast",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get(
            "AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"
        ),
    }


def migrate(paths: Paths) -> None:
    """Create or upgrade the SQLite metadata database and the basketcast pools, once."""
    paths.airflow.mkdir(parents=True, exist_ok=True)
    marker = paths.airflow / ".migrated"
    if marker.exists():
        return
    _run([sys.executable, "-m", "airflow", "db", "migrate"], paths)
    _run([sys.executable, "-m", "airflow", "pools", "import", str(write_pools(paths))], paths)
    marker.touch()


def write_pools(paths: Paths) -> Path:
    """The DAGs' pools (ml_jobs.config.AIRFLOW_POOLS) as a file `airflow pools import` reads."""
    pools = {
        name: {"slots": slots, "description": description, "include_deferred": False}
        for name, (slots, description) in AIRFLOW_POOLS.items()
    }
    target = paths.airflow / "pools.json"
    target.write_text(json.dumps(pools, indent=2))
    return target


def run_dag(
    dag_id: str,
    paths: Paths,
    conf: dict[str, object] | None = None,
    logical_date: datetime | None = None,
) -> None:
    """Run one DagRun of `dag_id` to the end with `dag.test()`; raise if it did not succeed."""
    migrate(paths)
    when = (logical_date or datetime.now(UTC)).isoformat()
    _run(
        [sys.executable, "-m", "ml_jobs.airflow_local", dag_id, when, json.dumps(conf or {})], paths
    )


# duckdb 2.0 reports objects still alive at interpreter exit ("nanobind: leaked ..."): harmless
# noise that would bury the real log, so it is dropped from what the user sees.
_NOISE = ("nanobind: ", " - leaked ")


def backfill(dag_id: str, paths: Paths, first: datetime, last: datetime) -> list[datetime]:
    """Run `dag_id` once per day for logical dates first..last (inclusive), oldest first.

    Each run covers its own data interval, so a backfill leaves the warehouse as the same
    daily runs made one after another would. (With a scheduler running, `airflow backfill
    create` does the same through the scheduler.)
    """
    if last < first:
        raise ValueError(f"backfill range is empty: {first:%Y-%m-%d} is after {last:%Y-%m-%d}")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for day in days:
        run_dag(dag_id, paths, logical_date=day)
    return days


def _run(cmd: list[str], paths: Paths) -> None:
    with subprocess.Popen(
        cmd, env=airflow_env(paths), stderr=subprocess.PIPE, text=True, bufsize=1
    ) as child:
        assert child.stderr is not None
        for line in child.stderr:
            if not line.startswith(_NOISE):
                sys.stderr.write(line)
    if child.returncode != 0:
        raise DagRunFailed(f"{' '.join(cmd[2:5])} failed (exit {child.returncode}); see log above")


def standalone(paths: Paths, port: int = 8080) -> int:
    """`airflow standalone` with the basketcast DAGs loaded; prints the URL and login.

    Metadata lives in SQLite under `$BASKETCAST_HOME/airflow` unless BASKETCAST_AIRFLOW_DB holds
    a SQLAlchemy URL (e.g. postgresql+psycopg2://user@127.0.0.1:5432/airflow).
    """
    import time

    env = airflow_env(paths)
    env["AIRFLOW__API__PORT"] = str(port)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    if os.environ.get("BASKETCAST_AIRFLOW_DB"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = os.environ["BASKETCAST_AIRFLOW_DB"]
        (paths.airflow / ".migrated").unlink(missing_ok=True)
    migrate(paths)
    passwords = paths.airflow / "simple_auth_manager_passwords.json.generated"
    with subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env) as server:
        for _ in range(240):
            if passwords.exists() or server.poll() is not None:
                break
            time.sleep(0.5)
        if passwords.exists():
            login = json.loads(passwords.read_text()).get("admin", "(see the log above)")
            print(f"\nAirflow UI: http://127.0.0.1:{port}  login: admin / {login}", flush=True)
            print(f"DAGs from {DAGS_DIR}; metadata: {env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}")
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.terminate()
            return server.wait()


def _child(dag_id: str, logical_date: str, conf: str) -> int:
    """Inside the child process: load the DAG from the dags folder and test it."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{error}", file=sys.stderr)
        return 1
    if dag_id not in bag.dags:
        print(f"no DAG named {dag_id!r}; known: {sorted(bag.dags)}", file=sys.stderr)
        return 2
    run = bag.dags[dag_id].test(
        logical_date=datetime.fromisoformat(logical_date), run_conf=json.loads(conf)
    )
    state = str(getattr(run, "state", "unknown"))
    print(f"DagRun {dag_id} finished: {state}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--standalone"]:
        sys.exit(standalone(Paths.from_env()))
    sys.exit(_child(*sys.argv[1:4]))
