"""User models on Complete Journey: propensity (torch vs XGBoost) and recommendations (torch vs
popularity / repurchase / co-occurrence), temporal backtest on weekly cutoffs.

    .venv/bin/python bench/completejourney_users.py                  # ingest + build + backtest
    .venv/bin/python bench/completejourney_users.py --skip-build     # reuse the home's warehouse
    .venv/bin/python bench/completejourney_users.py --cutoffs 2 --no-record

Complete Journey has purchases only (no views, carts or searches): the user models see one
`purchase` event per order line. The same backtest as bench/user_models.py (weekly cutoffs,
`UserModelsConfig` defaults: 7-day label window, 16 labelled training cutoffs per fit); the
result goes into the "Complete Journey" part of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

from user_models import BASELINES, RESULTS, fmt  # noqa: E402

from ml_jobs.config import Paths, quiet_environment  # noqa: E402
from ml_jobs.users.backtest import UserModelsConfig, summarize  # noqa: E402
from ml_jobs.users.inputs import load_inputs  # noqa: E402

HEADING = "### User models on Complete Journey (bench/completejourney_users.py)"


def prepare(paths: Paths, top_products: int, skip_build: bool) -> None:
    """Ingest Complete Journey, run dbt (marts and feature exports), register Feast."""
    from ml_jobs import dbt_runner, features
    from ml_jobs.ingest.completejourney import CompleteJourneyConfig, ingest_completejourney

    os.environ["BASKETCAST_HOME"] = str(paths.home)
    if skip_build and paths.warehouse.exists():
        return
    ingest_completejourney(paths, CompleteJourneyConfig(top_products=top_products))
    # run, not build: the bench needs the tables, the tests run in CI
    dbt_runner.run_dbt(["run", "--exclude", "tag:consumers"], paths)
    features.apply(paths)


def record(text: str) -> None:
    """Replace this section of RESULTS.md, or append it."""
    old = RESULTS.read_text(encoding="utf-8")
    start = old.find(HEADING)
    if start < 0:
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")
        return
    rest = old[start:].split("\n")
    end = next((i for i, line in enumerate(rest[1:], 1) if line.startswith("#")), len(rest))
    RESULTS.write_text(old[:start] + text + "\n" + "\n".join(rest[end:]), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/basketcast-bench-cj-users"))
    parser.add_argument("--top-products", type=int, default=500)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--cutoffs", type=int, default=3, help="backtest cutoffs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    quiet_environment()
    # Own Feast project: the bench never touches the online keys of another home.
    os.environ.setdefault("BASKETCAST_FEAST_PROJECT", "bench_cj_users")
    paths = Paths(args.home)
    console = Console(stderr=True)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    prepare(paths, args.top_products, args.skip_build)
    t_build = time.perf_counter() - t0

    config = UserModelsConfig(n_cutoffs=args.cutoffs).with_threads(args.threads)
    t0 = time.perf_counter()
    inputs = load_inputs(paths, config, console)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = inputs.backtest(config, console.log)
    t_backtest = time.perf_counter() - t0

    everyone = summarize(metrics)
    torch_auc = everyone.loc["torch_sequence_propensity", "roc_auc"]
    xgb_auc = everyone.loc["xgboost_propensity", "roc_auc"]
    best = everyone.loc[list(BASELINES), "hr_at_10"].idxmax()
    hr_ratio = (
        everyone.loc["torch_sequence_recommendations", "hr_at_10"] / everyone.loc[best, "hr_at_10"]
    )
    verdict = "beats" if torch_auc > xgb_auc else "does NOT beat"
    text = "\n".join(
        [
            f"{HEADING} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Top {args.top_products} products, every household ({len(inputs.predict_ex)} users "
            f"active at the last cutoff), purchases only. {len(inputs.tests)} weekly backtest "
            f"cutoffs {[str(c) for c in inputs.tests]}, {config.train_cutoffs} labelled "
            f"training cutoffs each. {platform.machine()}, {os.cpu_count()} cores, CPU, "
            f"{args.threads} thread(s); load average {load_start:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end (shared machine: times are upper bounds).",
            "",
            f"- Propensity: torch ROC-AUC {torch_auc:.4f} vs XGBoost {xgb_auc:.4f} "
            f"({torch_auc - xgb_auc:+.4f}): torch {verdict} XGBoost on Complete Journey.",
            f"- Recommendations: torch HR@10 / best baseline ({best}) = {hr_ratio:.3f}.",
            "",
            f"Timings: ingest + dbt run {t_build:.0f} s, load + Feast features "
            f"{t_load:.1f} s, backtest {t_backtest:.1f} s.",
            "",
            "All users (means over cutoffs):",
            "",
            fmt(everyone),
            "",
        ]
    )
    print(text)
    if not args.no_record:
        record(text)
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
