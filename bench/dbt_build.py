"""Time the dbt warehouse build against a hand-written DuckDB floor; record in bench/RESULTS.md.

    .venv/bin/python bench/dbt_build.py                               # ~1M events, 3 repeats
    .venv/bin/python bench/dbt_build.py --users 72000 --items 3000 --repeat 1   # ~12M events
    .venv/bin/python bench/dbt_build.py --users 120000 --items 5000 --repeat 1 --skip-floor \
        --home /tmp/shop-m                                                # ~20M events, kept

For one synthetic shop it measures, each step in a child process of its own (wall time and
that process's peak resident memory):
- full: `dbt run --full-refresh` of the warehouse (staging with quarantine, intermediate,
  marts, feature exports; no data tests, no consumers, no models/ml);
- floor: one hand-written DuckDB query per output, straight from the raw Parquet, computing the
  same item daily demand, user feature snapshots and user category shares (dedupe included,
  no quarantine);
- incremental: `dbt run` after the full build, both with `events_lookback_days=0` (the same
  vars, so dbt's partial parse holds): the events, the daily models and the feature snapshots
  reload only the newest day, the feature exports rewrite only its month's file; dims are
  rewritten whole;
- build: `dbt build` (models and all data tests) once, for reference.
Ratios are of medians measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ml_jobs.config import DBT_PROJECT_DIR, Paths, quiet_environment
from ml_jobs.generate import ShopConfig, generate_shop

RESULTS = Path(__file__).with_name("RESULTS.md")
DBT = str(Path(sys.executable).with_name("dbt"))
SELECTION = ["--exclude", "tag:consumers", "path:models/ml"]

FLOOR_SQL = """
set TimeZone = 'UTC';
create or replace table floor_item_daily_demand as
with
events as (
    select item_id, user_id, lower(trim(event_type)) as event_type, event_ts,
           cast(event_ts as date) as day
    from read_parquet('{raw}/events/*.parquet')
    where event_type is not null
    qualify row_number() over (partition by event_id order by event_ts, user_id, item_id) = 1
),
lines as (
    select item_id, order_id, quantity, quantity * unit_price as revenue,
           cast(order_ts as date) as day
    from read_parquet('{raw}/order_lines/*.parquet')
    where status <> 'cancelled'
    qualify row_number() over (partition by order_id, item_id order by order_ts) = 1
),
bounds as (
    select min(day) as first_day, max(day) as last_day
    from (select day from events union all select day from lines)
),
event_days as (
    select item_id, day, count(*) filter (where event_type = 'view') as views,
           count(*) filter (where event_type = 'cart') as carts,
           count(*) filter (where event_type = 'favorite') as favorites
    from events where item_id is not null group by all
),
line_days as (
    select item_id, day, sum(quantity) as units_sold, count(distinct order_id) as order_count,
           sum(revenue) as revenue
    from lines group by all
),
items as (select item_id, category_id, base_price from read_parquet('{raw}/items/*.parquet')),
spine as (
    select items.item_id, items.category_id, items.base_price,
           unnest(generate_series(bounds.first_day, bounds.last_day, interval 1 day))::date as day
    from items cross join bounds
),
snapshots as (
    select item_id, snapshot_date as day, on_hand
    from read_parquet('{raw}/inventory_snapshots/*.parquet')
)
select spine.item_id, spine.day as demand_date, spine.category_id,
       coalesce(l.units_sold, 0) as units_sold, coalesce(l.order_count, 0) as order_count,
       coalesce(l.revenue, 0) as revenue, coalesce(e.views, 0) as views,
       coalesce(e.carts, 0) as carts, coalesce(e.favorites, 0) as favorites,
       coalesce(l.revenue / nullif(l.units_sold, 0), spine.base_price) as price,
       s.on_hand, coalesce(s.on_hand = 0, false) as is_stockout
from spine
left join event_days e on e.item_id = spine.item_id and e.day = spine.day
left join line_days l on l.item_id = spine.item_id and l.day = spine.day
left join snapshots s on s.item_id = spine.item_id and s.day = spine.day;

create or replace table floor_user_features as
with
events as (
    select user_id, lower(trim(event_type)) as event_type, event_ts,
           cast(event_ts as date) as day
    from read_parquet('{raw}/events/*.parquet')
    where event_type is not null
    qualify row_number() over (partition by event_id order by event_ts, user_id, item_id) = 1
),
lines as (
    select user_id, order_id, quantity * unit_price as revenue, cast(order_ts as date) as day
    from read_parquet('{raw}/order_lines/*.parquet')
    where status <> 'cancelled'
    qualify row_number() over (partition by order_id, item_id order by order_ts) = 1
),
user_days as (
    select user_id, day, sum(views) as views, sum(carts) as carts, sum(purchases) as purchases,
           sum(spend) as spend, max(last_purchase_ts) as last_purchase_ts
    from (
        select user_id, day, count(*) filter (where event_type = 'view') as views,
               count(*) filter (where event_type = 'cart') as carts,
               count(*) filter (where event_type = 'purchase') as purchases, 0 as spend,
               max(event_ts) filter (where event_type = 'purchase') as last_purchase_ts
        from events group by all
        union all
        select user_id, day, 0, 0, 0, sum(revenue), null from lines group by all
    )
    group by all
),
snapshot_days as (
    select unnest(generate_series(min(day) + 1, max(day) + 1, interval 1 day))::date as snap
    from user_days
)
select user_id, snap::timestamptz as feature_ts,
       sum(views) filter (where day >= snap - 7) as views_7d,
       sum(carts) filter (where day >= snap - 7) as carts_7d,
       sum(purchases) filter (where day >= snap - 7) as purchases_7d,
       sum(views) filter (where day >= snap - 28) as views_28d,
       sum(carts) filter (where day >= snap - 28) as carts_28d,
       sum(purchases) filter (where day >= snap - 28) as purchases_28d,
       sum(purchases) as purchases_90d, sum(spend) as spend_90d,
       (epoch(snap::timestamptz) - epoch(max(last_purchase_ts))) / 86400.0
           as days_since_last_purchase,
       count(*) filter (where day >= snap - 28) as active_days_28d
from snapshot_days join user_days on day < snap and day >= snap - 90
group by user_id, snap;

create or replace table floor_user_category_shares as
with
events as (
    select user_id, item_id, lower(trim(event_type)) as event_type,
           cast(event_ts as date) as day
    from read_parquet('{raw}/events/*.parquet')
    where event_type is not null and item_id is not null
    qualify row_number() over (partition by event_id order by event_ts, user_id, item_id) = 1
),
items as (select item_id, category_id from read_parquet('{raw}/items/*.parquet')),
days as (
    select user_id, day, category_id, count(*) as n,
           count(*) filter (where event_type = 'purchase') as purchases
    from events join items using (item_id) group by all
),
snapshot_days as (
    select unnest(generate_series(min(day) + 1, max(day) + 1, interval 1 day))::date as snap
    from days
),
windowed as (
    select user_id, snap, category_id, sum(n) as n, sum(purchases) as purchases
    from snapshot_days join days on day < snap and day >= snap - 28
    group by all
)
select user_id, snap::timestamptz as feature_ts, count(*) as categories_28d,
       max(n) / sum(n) as top_category_share_28d,
       (ln(sum(n)) - sum(n * ln(n)) / sum(n)) / ln(2) as category_entropy_28d,
       max(purchases) / nullif(sum(purchases), 0) as top_purchase_category_share_28d
from windowed group by user_id, snap;
"""


def child(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS of that process in MB). Fails loudly."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def dbt(args: list[str], env: dict[str, str], project: Path) -> tuple[float, float]:
    return child([DBT, *args, "--project-dir", str(project), "--profiles-dir", str(project)], env)


def slowest_models(target: Path, top: int = 6) -> list[str]:
    """'model s' for the slowest models of the last dbt command (its run_results.json)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    ranked = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:top]
    return [f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f}" for r in ranked]


def floor(paths: Paths, env: dict[str, str]) -> tuple[float, float]:
    sql = FLOOR_SQL.format(raw=paths.raw)
    # Under the same DuckDB memory limit as the dbt profile when one is set (large shops).
    if limit := env.get("BASKETCAST_DUCKDB_MEMORY_LIMIT"):
        sql = f"set memory_limit = '{limit}';\n{sql}"
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); con.execute(sys.argv[2]); "
        "con.close()"
    )
    return child([sys.executable, "-c", script, str(paths.home / "floor.duckdb"), sql], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--snapshot-days", type=int, default=1, help="feature snapshot cadence")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--skip-build", action="store_true", help="skip the dbt build with tests")
    parser.add_argument(
        "--skip-floor", action="store_true", help="skip the hand-written floor (long at 20M)"
    )
    parser.add_argument(
        "--home", type=Path, help="build the shop here and keep it (default: a temporary folder)"
    )
    args = parser.parse_args()
    quiet_environment()
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="basketcast-dbt-bench-") as folder:
        paths = Paths(args.home or Path(folder) / "home")
        rows = generate_shop(ShopConfig(users=args.users, items=args.items, days=args.days), paths)
        paths.exports.mkdir(parents=True, exist_ok=True)
        # A frozen copy of the project: edits to the working tree during the measurement
        # (which would also force dbt to parse again) do not reach it.
        project = Path(folder) / "dbt_project"
        shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
        env = {
            **os.environ,
            "BASKETCAST_HOME": str(paths.home),
            "BASKETCAST_WAREHOUSE": str(paths.warehouse),
            "DBT_TARGET_PATH": f"{folder}/target",
            "DBT_LOG_PATH": f"{folder}/logs",
            "BASKETCAST_DBT_TARGET": "duckdb",
        }
        # The same --vars on every run: a change of vars makes dbt parse the whole project
        # again, so differing vars would time a re-parse instead of the one-day load. A full
        # refresh reloads everything whatever the lookback says.
        one_day = json.dumps(
            {"feature_snapshot_days": args.snapshot_days, "events_lookback_days": 0}
        )
        slowest: dict[str, list[str]] = {}
        timings: dict[str, list[tuple[float, float]]] = {
            "full": [],
            "floor": [],
            "incremental": [],
        }
        for i in range(args.repeat):
            full = ["run", *SELECTION, "--full-refresh", "--vars", one_day]
            timings["full"].append(dbt(full, env, project))
            slowest["full"] = slowest_models(Path(folder) / "target")
            timings["incremental"].append(dbt(["run", *SELECTION, "--vars", one_day], env, project))
            slowest["incremental"] = slowest_models(Path(folder) / "target")
            if not args.skip_floor:
                timings["floor"].append(floor(paths, env))
            print(
                f"repeat {i + 1}/{args.repeat}: "
                + ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in timings.items() if v),
                flush=True,
            )
        build = None
        if not args.skip_build:
            build = dbt(["build", *SELECTION, "--full-refresh", "--vars", one_day], env, project)

    wall = {k: statistics.median(t for t, _ in v) for k, v in timings.items() if v}
    memory = {k: max(m for _, m in v) for k, v in timings.items() if v}
    events = rows["events"]
    load_end = os.getloadavg()[0]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores (shared with other work while measured), "
        f"Python {platform.python_version()}, load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end"
    )
    lines = [
        f"### dbt warehouse build — {events / 1e6:.1f}M events "
        f"({args.users} users × {args.items} items × {args.days} days, "
        f"snapshots every {args.snapshot_days} d)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine} · median of {args.repeat} · "
        "DuckDB, each step its own process",
        "",
        "| step | median s | events/s | peak RSS MB |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {wall[name]:.1f} | {events / wall[name]:,.0f} | {memory[name]:.0f} |"
            for name in ("full", "floor", "incremental")
            if name in wall
        ),
        *(
            [
                f"| dbt build incl. data tests (once) | {build[0]:.1f} | "
                f"{events / build[0]:,.0f} | {build[1]:.0f} |"
            ]
            if build
            else []
        ),
        "",
        (
            f"full / floor = **{wall['full'] / wall['floor']:.2f}×** (goal ≤ 1.5× at 20M) · "
            if "floor" in wall
            else "floor not run · "
        )
        + f"one-day incremental / full = **{wall['incremental'] / wall['full']:.0%}** "
        "(goal ≤ 10%)",
        "",
    ]
    lines += [
        f"slowest models, last {name} run (s): " + ", ".join(models)
        for name, models in slowest.items()
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_record:
        with RESULTS.open("a") as results:
            results.write("\n" + report)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
