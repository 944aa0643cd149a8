"""`basketcast`: the command line. Each sub-command calls one function of the pipeline.

basketcast generate --users 2000 --items 150 --days 240    synthetic shop → raw Parquet
basketcast build                                           dbt build (staging, marts, exports)
basketcast quality                                         load reconciles, rejects in bounds
basketcast features                                        feast apply + materialize
basketcast train [--product demand|users] [--grain week]   backtest, train, promote champions
basketcast predict                                         champions score the newest data
basketcast consumers                                       dbt build of consumer marts
basketcast run                                             all of the above, in this process
basketcast dag [basketcast_daily|_train|_consumers]        a DAG through Airflow dag.test()
basketcast backfill 2026-05-01 2026-05-07                  daily runs for a range of dates
basketcast demo                                            synthetic shop → DAG → example SQL
basketcast query "select ..."                              read-only SQL on the warehouse
basketcast online-features user 1 2 3                      online features from Feast
basketcast serve [--online redis] [--api-key-file F]       HTTP features and predictions
basketcast ingest completejourney [--top-products N]       Complete Journey → raw Parquet
basketcast ingest csv --mapping mapping.yml FILE...        transactions CSV → raw Parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console

from ml_jobs.config import Paths, quiet_environment

console = Console(stderr=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _cmd_generate(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.generate import ShopConfig, generate_shop

    config = ShopConfig(
        users=args.users, items=args.items, days=args.days, seed=args.seed, start_date=args.start
    )
    rows = generate_shop(config, paths)
    for table, count in rows.items():
        console.print(f"  {table:<22}{count:>12,} rows")
    console.print(f"raw Parquet written under [bold]{paths.raw}[/]")


def _cmd_build(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    pipeline.build_warehouse(paths)
    console.print(f"warehouse built: [bold]{paths.warehouse}[/]")


def _cmd_features(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    rows = pipeline.publish_features(paths)
    console.print(f"feature store applied and materialized ({rows:,} rows)")


def _cmd_quality(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    counts = pipeline.quality_gate(paths, max_rejected_share=args.max_rejected_share)
    console.print(f"quality gate passed: {counts}")


def _cmd_train(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    if args.grain:  # the demand job reads its grain from the environment (DemandJobConfig)
        import os

        os.environ["BASKETCAST_DEMAND_GRAIN"] = args.grain
    if args.product in ("all", "demand"):
        summary = pipeline.train_demand(paths)
        console.print(f"demand champion: {summary['champion_run_id']}")
    if args.product in ("all", "users"):
        summary = pipeline.train_users(paths)
        champions = ", ".join(f"{k}: {v}" for k, v in summary["champions"].items())
        console.print(f"user models for {summary['n_users']:,} users; champions {champions}")


def _cmd_predict(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    summary = pipeline.predict_champions(paths)
    console.print(f"champion predictions written: {summary}")


def _cmd_consumers(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    pipeline.build_consumers(paths)
    console.print("consumer marts built")


def _cmd_report(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.report import build_report

    console.print(f"report written: [bold]{build_report(paths)}[/]")


def _cmd_run(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline

    pipeline.run_all(paths, generate_if_missing=not args.no_generate)
    console.print(f"pipeline finished; warehouse at [bold]{paths.warehouse}[/]")


def _cmd_dag(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import pipeline
    from ml_jobs.airflow_local import run_dag

    logical = (
        datetime.combine(args.logical_date, datetime.min.time(), UTC)
        if args.logical_date
        else pipeline.next_logical_date(paths)
    )
    run_dag(args.dag_id, paths, logical_date=logical)


def _cmd_backfill(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.airflow_local import backfill, run_dag

    first = datetime.combine(args.start, datetime.min.time(), UTC)
    last = datetime.combine(args.end, datetime.min.time(), UTC)
    days = backfill("basketcast_daily", paths, first, last)
    run_dag("basketcast_consumers", paths, logical_date=last)
    console.print(f"backfilled {len(days)} daily runs, {args.start} to {args.end}")


def _cmd_demo(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import demo

    demo.run_demo(paths, fresh=args.fresh)


def _cmd_query(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import demo

    demo.print_query(paths, args.sql, limit=args.limit)


def _cmd_online(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs import features

    frame = features.online_features(paths, args.entity, args.ids)
    print(frame.to_string(index=False))


def _cmd_serve(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.serving.app import serve
    from ml_jobs.serving.guard import API_KEY_ENV, api_key_from_env
    from ml_jobs.serving.schemas import ServeConfig

    api_key = api_key_from_env()
    if args.api_key_file is not None:
        try:
            api_key = args.api_key_file.read_text(encoding="utf-8").strip() or None
        except OSError as error:
            raise SystemExit(f"--api-key-file {args.api_key_file}: {error.strerror}") from None
        if api_key is None:
            raise SystemExit(f"--api-key-file {args.api_key_file} is empty")
    config = ServeConfig(
        paths,
        args.online,
        args.host,
        args.port,
        args.max_batch,
        api_key=api_key,
        max_body_bytes=args.max_body_bytes,
    )
    if api_key is not None:
        console.print(f"scoring endpoints require the API key (from {API_KEY_ENV} or file)")
    console.print(f"serving on http://{config.host}:{config.port} ({config.online} online store)")
    serve(config)


Command = Callable[[argparse.Namespace, Paths], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="basketcast",
        description="Warehouse-native demand intelligence: behaviour logs in, predictions out.",
    )
    parser.add_argument(
        "--home", help="data folder (default: $BASKETCAST_HOME, else ./.basketcast)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    gen = add("generate", _cmd_generate, "write a synthetic shop as raw Parquet")
    gen.add_argument("--users", type=_positive, default=2000, help="number of users")
    gen.add_argument("--items", type=_positive, default=150, help="number of items")
    gen.add_argument("--days", type=_positive, default=240, help="days of history")
    gen.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    gen.add_argument("--start", type=_day, default=date(2026, 1, 1), help="first day YYYY-MM-DD")

    add("build", _cmd_build, "dbt build of staging, marts and feature exports")
    add("features", _cmd_features, "feast apply, then materialize into the online store")
    quality = add("quality", _cmd_quality, "check the newest load reconciles before publishing")
    quality.add_argument(
        "--max-rejected-share", type=float, default=0.05, help="allowed rejected share per table"
    )
    train = add("train", _cmd_train, "backtest and train models, write predictions, pick champions")
    train.add_argument("--product", choices=["all", "demand", "users"], default="all")
    train.add_argument(
        "--grain", choices=["day", "week"], help="demand time grain (BASKETCAST_DEMAND_GRAIN)"
    )
    add("predict", _cmd_predict, "score every champion on the newest data (trains if none)")
    add("consumers", _cmd_consumers, "dbt build of the consumer marts")
    add("report", _cmd_report, "HTML report of models, backtests and sample forecasts")
    run = add("run", _cmd_run, "every step in order, in this process")
    run.add_argument("--no-generate", action="store_true", help="fail instead of generating")
    dag = add("dag", _cmd_dag, "run a DAG once through Airflow dag.test()")
    dag.add_argument(
        "dag_id",
        nargs="?",
        default="basketcast_daily",
        choices=["basketcast_daily", "basketcast_train", "basketcast_consumers"],
    )
    dag.add_argument(
        "--logical-date",
        type=_day,
        help="logical date; covers the day before (default: newest raw day + 1)",
    )
    back = add("backfill", _cmd_backfill, "run basketcast_daily for each logical date in a range")
    back.add_argument("start", type=_day, help="first logical date YYYY-MM-DD")
    back.add_argument("end", type=_day, help="last logical date YYYY-MM-DD (inclusive)")
    demo = add("demo", _cmd_demo, "synthetic shop through the Airflow DAG, then example SQL")
    demo.add_argument("--fresh", action="store_true", help="start from an empty home folder")
    query = add("query", _cmd_query, "run read-only SQL against the warehouse")
    query.add_argument("sql", help="a SQL statement, or @path/to/file.sql")
    query.add_argument("--limit", type=_positive, default=20, help="rows to print")
    online = add("online-features", _cmd_online, "fetch online features from the feature store")
    online.add_argument("entity", choices=["user", "item"])
    online.add_argument("ids", type=int, nargs="+", help="entity ids")
    serve = add("serve", _cmd_serve, "HTTP app: /features, /predict/demand, /predict/propensity")
    serve.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument("--port", type=_positive, default=8000)
    serve.add_argument("--max-batch", type=_positive, default=1000, help="ids per request")
    serve.add_argument(
        "--max-body-bytes", type=_positive, default=1 << 20, help="largest request body (413)"
    )
    serve.add_argument(
        "--api-key-file",
        type=Path,
        help="file holding the API key /features and /predict/* require "
        "(default: $BASKETCAST_API_KEY; none: open)",
    )
    from ml_jobs.ingest.commands import add_ingest_parser

    add_ingest_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_environment()
    if args.home:
        import os

        os.environ["BASKETCAST_HOME"] = args.home
    paths = Paths.from_env()
    started = time.perf_counter()
    try:
        args.func(args, paths)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]basketcast {args.command}: {error}[/]")
        return 1
    console.print(f"[dim]{args.command} took {time.perf_counter() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
