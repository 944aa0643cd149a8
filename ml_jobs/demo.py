"""The demo: a synthetic shop through the Airflow DAG, then the questions users ask in SQL."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ml_jobs.config import REPO_ROOT, Paths
from ml_jobs.warehouse import connect

EXAMPLE_QUERIES = REPO_ROOT / "examples" / "queries"
# Wide enough for the example tables when output goes to a file or CI log.
console = Console(width=shutil.get_terminal_size((150, 40)).columns)


def run_demo(paths: Paths, fresh: bool = False) -> None:
    """A synthetic shop through basketcast_daily and basketcast_consumers, then example SQL."""
    from ml_jobs import pipeline
    from ml_jobs.airflow_local import run_dag

    if fresh and paths.home.exists():
        shutil.rmtree(paths.home)
    started = time.perf_counter()
    if not pipeline.raw_is_present(paths):
        console.rule("[bold]basketcast demo: a synthetic shop")
        rows = pipeline.generate(paths)
        console.print(", ".join(f"{table} {count:,}" for table, count in rows.items()))
    logical = pipeline.next_logical_date(paths)
    for dag_id in ("basketcast_daily", "basketcast_consumers"):
        console.rule(f"[bold]{dag_id} at {logical:%Y-%m-%d} through Airflow dag.test()")
        run_dag(dag_id, paths, logical_date=logical)
    elapsed = time.perf_counter() - started
    console.rule(f"[bold green]pipeline finished in {elapsed:.0f} s")
    console.print(f"warehouse: [bold]{paths.warehouse}[/] (DuckDB; any DuckDB client opens it)")
    console.print(f"online store: [bold]{paths.feast / 'online_store.db'}[/] (Feast, SQLite)")
    folder = EXAMPLE_QUERIES.relative_to(REPO_ROOT)
    console.print(f"ask your own: [bold].venv/bin/basketcast query @{folder}/<file>.sql[/]\n")
    for path in sorted(EXAMPLE_QUERIES.glob("*.sql")):
        print_query(paths, f"@{path}", limit=5)


def read_sql(sql: str) -> tuple[str, str]:
    """SQL text and a title; `@file.sql` reads a file and uses its leading comment as title."""
    if not sql.startswith("@"):
        return sql, "query"
    path = Path(sql[1:])
    if not path.exists():
        raise FileNotFoundError(f"no SQL file at {path}")
    text = path.read_text()
    comments = [line[2:].strip() for line in text.splitlines() if line.startswith("--")]
    return text, comments[0] if comments else path.name


def print_query(paths: Paths, sql: str, limit: int = 20) -> None:
    """Run SQL read-only against the warehouse and print the first rows as a table."""
    if not paths.warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {paths.warehouse}: run `basketcast run` first")
    text, title = read_sql(sql)
    with connect(paths.warehouse, read_only=True) as con:
        cursor = con.execute(text)
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(limit)
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(f"[dim]{text.strip()}[/]")
    console.print(table)
