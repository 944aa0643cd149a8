"""User models on the demo shop: backtest quality against the bars, and scoring speed.

    .venv/bin/python bench/user_models.py                       # demo shop in a temp folder
    .venv/bin/python bench/user_models.py --home /tmp/bc6       # reuse a built demo home
    .venv/bin/python bench/user_models.py --cutoffs 1 --no-record

Bars: torch propensity ROC-AUC >= XGBoost + 0.01 and ECE <= 0.02; torch HR@10 >=
1.2 x the best of popularity / repurchase / co-occurrence; scoring every demo user < 60 s on
CPU. Quality numbers are means over the backtest cutoffs; the scoring time is the median of
`--repeats` runs of: Feast point-in-time features + sequences + every model's scores for all
users active in the last 90 days. Results are appended to bench/RESULTS.md.

Two references put the bars in scale. The ECE noise floor is the ECE the torch scores would
have if they were exactly right (outcomes drawn from them, mean of 200 draws): what a perfectly
calibrated model still measures on this many users. On a generated demo shop (ShopConfig
defaults) the oracle scores every user with the generator's hidden parameters (activity,
category taste, churn) and true expected item demand: the ceiling any model can reach.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from ml_jobs.config import Paths, quiet_environment
from ml_jobs.users import data
from ml_jobs.users.backtest import (
    UserModelsConfig,
    fit_models,
    score_models,
    summarize,
)
from ml_jobs.users.examples import build_examples
from ml_jobs.users.job import load_inputs

RESULTS = Path(__file__).with_name("RESULTS.md")
COLUMNS = [
    "roc_auc",
    "pr_auc",
    "log_loss",
    "ece",
    "top_decile_lift",
    "category_nll",
    "category_top1",
    "hr_at_10",
    "ndcg_at_10",
    "map_at_12",
]
BASELINES = ("popularity", "repurchase", "cooccurrence")


def build_demo(home: Path) -> Paths:
    from ml_jobs import pipeline

    paths = Paths(home)
    os.environ["BASKETCAST_HOME"] = str(home)
    if not paths.warehouse.exists():
        pipeline.generate(paths)
        pipeline.build_warehouse(paths)
        pipeline.publish_features(paths)
    return paths


def score_all_users(paths: Paths, inputs, fitted, config: UserModelsConfig) -> float:
    """Seconds to score every user from scratch: features, sequences, all models."""
    started = time.perf_counter()
    users = inputs.predict_ex.user_id
    rows = pd.DataFrame({"user_id": users, "cutoff_ts": inputs.predict_ts})
    features = data.user_features(paths, users, rows["cutoff_ts"])
    ex = build_examples(
        rows, features, inputs.events, inputs.catalog, config.max_len, config.window_days, False
    )
    score_models(fitted, ex, inputs.events, inputs.catalog, inputs.predict_ts, config)
    return time.perf_counter() - started


def ece_noise_floor(metrics: pd.DataFrame, scores: dict, draws: int = 200) -> float:
    """Mean ECE of the torch scores against outcomes drawn from them, over cutoffs."""
    from ml_jobs.users.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    floors = []
    for p in scores.values():
        sims = [expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)]
        floors.append(float(np.mean(sims)))
    return float(np.mean(floors)) if floors else float("nan")


def oracle(paths: Paths, inputs) -> dict[str, float] | None:
    """Propensity ROC-AUC and HR@10 of the generator's own expected purchases (demo only)."""
    from ml_jobs.generate.catalog import build_catalog, build_users
    from ml_jobs.generate.shop_config import ShopConfig
    from ml_jobs.users.metrics import ranking_metrics, roc_auc

    files = sorted((paths.truth / "item_daily_demand").glob("*.parquet"))
    config = ShopConfig()
    if not files or inputs.catalog.n_items != config.items:
        return None
    shop = build_catalog(config)
    shoppers = build_users(config, shop)
    truth = pd.concat([pd.read_parquet(f) for f in files])
    day = (pd.to_datetime(truth["demand_date"]) - pd.Timestamp(config.start_date)).dt.days
    demand = truth.assign(day=day).pivot_table(
        index="day", columns="item_id", values="expected_units"
    )
    demand = demand.reindex(columns=inputs.catalog.item_ids).fillna(0.0)
    item_category = shop.category[inputs.catalog.item_ids - 1]
    ex, dates = inputs.train_all, inputs.train_all.cutoff_ts.dt.date.to_numpy()
    aucs, hrs = [], []
    for test in inputs.tests:
        rows = dates == test
        users = ex.user_id[rows] - 1
        first = (pd.Timestamp(test) - pd.Timestamp(config.start_date)).days
        expected = np.zeros((len(users), len(item_category)))
        for d in range(first, first + 7):
            alive = (shoppers.join_day <= d) & (d < shoppers.churn_day)
            weight = shoppers.preference * (shoppers.activity * alive)[:, None]
            share = weight[users][:, item_category] / weight.sum(axis=0)[item_category]
            expected += share * demand.loc[d].to_numpy()[None, :]
        aucs.append(roc_auc(ex.purchased[rows], expected.sum(axis=1)))
        hrs.append(ranking_metrics(expected, ex.item_counts[rows], 10)["hr_at_10"])
    return {"roc_auc": float(np.mean(aucs)), "hr_at_10": float(np.mean(hrs))}


def per_cutoff(metrics: pd.DataFrame, kept: dict, inputs) -> list[str]:
    """Cutoff-to-cutoff spread of the two quality bars, and a diagnostic blend: the mean of
    the torch and XGBoost logits (both already Platt-calibrated), scored on each cutoff."""
    from scipy.special import expit, logit

    from ml_jobs.users.metrics import roc_auc

    part = metrics[metrics["segment"] == "all"]

    def table(metric: str) -> pd.DataFrame:
        rows = part[part["metric"] == metric]
        return rows.pivot_table(index="cutoff", columns="model_name", values="value")

    auc, hr = table("roc_auc"), table("hr_at_10")
    gaps = auc["torch_sequence_propensity"] - auc["xgboost_propensity"]
    ratios = hr["torch_sequence_recommendations"] / hr[list(BASELINES)].max(axis=1)
    dates = inputs.train_all.cutoff_ts.dt.date.to_numpy()
    blend = []
    for cutoff, out in sorted(kept.items()):
        y = inputs.train_all.purchased[dates == cutoff]
        p_torch = np.clip(out.propensity["torch_sequence_propensity"][0], 1e-6, 1 - 1e-6)
        p_xgb = np.clip(out.propensity["xgboost_propensity"][0], 1e-6, 1 - 1e-6)
        mixed = expit((logit(p_torch) + logit(p_xgb)) / 2)
        blend.append(roc_auc(y, mixed) - roc_auc(y, p_xgb))

    def fmt_list(xs) -> str:
        return ", ".join(f"{x:+.4f}" for x in xs)

    return [
        f"Per cutoff: torch - XGBoost ROC-AUC [{fmt_list(gaps)}] (spread "
        f"{gaps.max() - gaps.min():.4f}); torch HR@10 / that cutoff's best baseline "
        f"[{', '.join(f'{r:.3f}' for r in ratios)}] (spread {ratios.max() - ratios.min():.3f}); "
        f"torch+XGBoost logit blend - XGBoost ROC-AUC [{fmt_list(blend)}] "
        f"(mean {np.mean(blend):+.4f}).",
        "",
    ]


def fmt(frame: pd.DataFrame) -> str:
    cols = [c for c in COLUMNS if c in frame.columns]
    out = frame[cols].copy()
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in out.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.4f}" for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="built demo home (default: a fresh temp one)")
    parser.add_argument("--cutoffs", type=int, default=3, help="backtest cutoffs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="scoring repetitions")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    quiet_environment()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-users-"))
    paths = build_demo(home)
    config = UserModelsConfig(n_cutoffs=args.cutoffs).with_threads(args.threads)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    inputs = load_inputs(paths, config, console)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    kept: dict = {}
    metrics = inputs.backtest(config, console.log, keep=kept)
    t_backtest = time.perf_counter() - t0
    dates = inputs.train_all.cutoff_ts.dt.date.to_numpy()
    t0 = time.perf_counter()
    fitted = fit_models(
        inputs.train_all.subset(np.isin(dates, inputs.final_days)),
        inputs.feature_names,
        inputs.catalog,
        config,
        console.log,
    )
    t_fit = time.perf_counter() - t0
    score_times = [score_all_users(paths, inputs, fitted, config) for _ in range(args.repeats)]
    t_score = statistics.median(score_times)

    everyone, cold = summarize(metrics), summarize(metrics, "cold_start")
    auc_gap = (
        everyone.loc["torch_sequence_propensity", "roc_auc"]
        - everyone.loc["xgboost_propensity", "roc_auc"]
    )
    ece = everyone.loc["torch_sequence_propensity", "ece"]
    best_name = everyone.loc[list(BASELINES), "hr_at_10"].idxmax()
    hr_ratio = (
        everyone.loc["torch_sequence_recommendations", "hr_at_10"]
        / everyone.loc[best_name, "hr_at_10"]
    )
    n_users = len(inputs.predict_ex)
    floor = ece_noise_floor(
        metrics,
        {c: out.propensity["torch_sequence_propensity"][0] for c, out in kept.items()},
    )
    ceiling = oracle(paths, inputs)
    ece_before = {
        m: everyone.loc[m, "ece_uncalibrated"]
        for m in ("torch_sequence_propensity", "xgboost_propensity")
    }
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"CPU only, {args.threads} threads; load average {os.getloadavg()[0]:.1f} at the end "
        "(times are upper bounds when it is high)"
    )
    bars = [
        f"- torch ROC-AUC - XGBoost ROC-AUC = {auc_gap:+.4f} (bar >= +0.01): "
        f"{'met' if auc_gap >= 0.01 else 'NOT met'}",
        f"- torch ECE = {ece:.4f} (bar <= 0.02): {'met' if ece <= 0.02 else 'NOT met'}; "
        f"noise floor of a perfectly calibrated model on these users {floor:.4f}",
        f"- torch HR@10 / best baseline ({best_name}) = {hr_ratio:.3f} (bar >= 1.2): "
        f"{'met' if hr_ratio >= 1.2 else 'NOT met'}",
        f"- scoring all {n_users} demo users (features + sequences + all models), median of "
        f"{args.repeats}: {t_score:.1f} s (bar < 60 s): {'met' if t_score < 60 else 'NOT met'}",
    ]
    text = "\n".join(
        [
            f"## User models (bench/user_models.py) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Demo shop (ShopConfig defaults), {len(inputs.tests)} weekly backtest cutoffs "
            f"{[str(c) for c in inputs.tests]}, training on {config.train_cutoffs} labelled "
            f"cutoffs each. {machine}.",
            "",
            *bars,
            "",
            "Calibration (Platt scaler fitted on the newest training cutoff, which precedes the "
            "evaluated one): ECE before -> after: torch "
            f"{ece_before['torch_sequence_propensity']:.4f} -> {ece:.4f}, XGBoost "
            f"{ece_before['xgboost_propensity']:.4f} -> "
            f"{everyone.loc['xgboost_propensity', 'ece']:.4f}.",
            "",
            *per_cutoff(metrics, kept, inputs),
            (
                "Oracle (generator's hidden parameters and true demand): ROC-AUC "
                f"{ceiling['roc_auc']:.4f} (XGBoost + "
                f"{ceiling['roc_auc'] - everyone.loc['xgboost_propensity', 'roc_auc']:.4f}), "
                f"HR@10 {ceiling['hr_at_10']:.4f} "
                f"({ceiling['hr_at_10'] / everyone.loc[best_name, 'hr_at_10']:.3f} x {best_name})."
                if ceiling
                else "Oracle: not computed (not a default demo shop)."
            ),
            "",
            f"Timings: load + Feast features {t_load:.1f} s, backtest {t_backtest:.1f} s, "
            f"final fit {t_fit:.1f} s, scoring runs {[round(t, 1) for t in score_times]} s.",
            "",
            "All users (means over cutoffs):",
            "",
            fmt(everyone),
            "",
            "Cold-start users (no purchase before the cutoff):",
            "",
            fmt(cold),
            "",
        ]
    )
    print(text)
    if not args.no_record:
        record(text)
        print(f"recorded in {RESULTS}")


def record(text: str) -> None:
    """Replace the user models section of RESULTS.md (or append one)."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# basketcast results\n\n"
    start = old.find("## User models (bench/user_models.py)")
    if start < 0:
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")
        return
    rest = old[start:].split("\n")
    end = next((i for i, line in enumerate(rest[1:], 1) if line.startswith("#")), len(rest))
    tail = "\n".join(rest[end:])
    RESULTS.write_text(old[:start] + text + "\n" + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
