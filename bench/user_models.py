"""User models on the demo shop: backtest quality against the bars, and scoring speed.

    .venv/bin/python bench/user_models.py                       # demo shop in a temp folder
    .venv/bin/python bench/user_models.py --home /tmp/bc6       # reuse a built demo home
    .venv/bin/python bench/user_models.py --cutoffs 1 --no-record
    .venv/bin/python bench/user_models.py --users 8000 --home /tmp/bc8k  # a larger shop

Bars: torch propensity ROC-AUC >= XGBoost + 0.01 and ECE <= 0.02; torch HR@10 >=
1.2 x the best of popularity / repurchase / co-occurrence; scoring every demo user < 60 s on
CPU. Quality numbers are means over the backtest cutoffs; the scoring time is the median of
`--repeats` runs of: Feast point-in-time features + sequences + every model's scores for all
users active in the last 90 days. Results are appended to bench/RESULTS.md.

`--users N` generates a larger shop of the same shape (same items, days and seed; item demand
scaled by N / 2,000 so each shopper buys as often as in the demo shop) through the same
generate -> dbt build -> Feast path: about N / 2,000 times the rows per cutoff, so the AUC
gaps and the ECE are measured with less noise. Its results get their own section.

Two references put the bars in scale. The ECE noise floor is the ECE the torch scores would
have if they were exactly right (outcomes drawn from them, mean of 200 draws): what a perfectly
calibrated model still measures on this many users. On a shop this bench generated, the
oracle scores every user with the generator's hidden parameters (activity, category taste,
churn) and true expected item demand: the ceiling any model can reach.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from ml_jobs.config import Paths, quiet_environment
from ml_jobs.generate.shop_config import ShopConfig
from ml_jobs.users import data
from ml_jobs.users.backtest import (
    UserModelsConfig,
    fit_models,
    score_models,
    summarize,
)
from ml_jobs.users.examples import build_examples
from ml_jobs.users.inputs import load_inputs

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
CALIBRATION = "Platt scaler fitted on the newest training cutoff, which precedes the evaluated one"


DEMO_USERS = ShopConfig().users
SHOP_FILE = "bench_shop.json"  # the ShopConfig fields a bench home was generated with


def shop_config(users: int | None) -> ShopConfig:
    """The demo shop, or one with `users` shoppers and item demand scaled to match."""
    if users is None or users == DEMO_USERS:
        return ShopConfig()
    if users < 100:
        raise ValueError(f"--users {users}: give at least 100 shoppers")
    return ShopConfig(users=users, demand_scale=users / DEMO_USERS)


def build_demo(home: Path, shop: ShopConfig) -> Paths:
    """Generate, dbt build and publish `shop` under `home`, unless `home` already holds a
    warehouse, which must have been built from the same shop."""
    from ml_jobs import pipeline
    from ml_jobs.generate import generate_shop

    paths = Paths(home)
    os.environ["BASKETCAST_HOME"] = str(home)
    wanted = {"users": shop.users, "items": shop.items, "days": shop.days, "seed": shop.seed}
    record_file = home / SHOP_FILE
    if paths.warehouse.exists():
        built = json.loads(record_file.read_text()) if record_file.exists() else None
        if built is not None and built != wanted:
            raise ValueError(
                f"{home} holds a shop built with {built}, not {wanted}: "
                "pass another --home or matching --users"
            )
        return paths
    generate_shop(shop, paths)
    pipeline.build_warehouse(paths)
    pipeline.publish_features(paths)
    record_file.write_text(json.dumps(wanted))
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


def ece_noise_floor(scores: dict, draws: int = 200) -> dict:
    """Per cutoff, the mean ECE of the torch scores against outcomes drawn from them."""
    from ml_jobs.users.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    floors = {}
    for cutoff, p in sorted(scores.items()):
        sims = [expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)]
        floors[cutoff] = float(np.mean(sims))
    return floors


def auc_gap_error(y: np.ndarray, p_torch: np.ndarray, p_xgb: np.ndarray, draws: int = 200):
    """Bootstrap standard error of ROC-AUC(torch) - ROC-AUC(XGBoost) on one cutoff's users
    (users resampled with replacement, both models scored on the same resample)."""
    from ml_jobs.users.metrics import roc_auc

    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        gaps.append(roc_auc(y[i], p_torch[i]) - roc_auc(y[i], p_xgb[i]))
    return float(np.std(gaps))


def oracle(paths: Paths, inputs, config: ShopConfig) -> dict[str, float] | None:
    """Propensity ROC-AUC and HR@10 of the generator's own expected purchases (a shop this
    bench generated from `config`)."""
    from ml_jobs.generate.catalog import build_catalog, build_users
    from ml_jobs.users.metrics import ranking_metrics, roc_auc

    files = sorted((paths.truth / "item_daily_demand").glob("*.parquet"))
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


def per_cutoff(metrics: pd.DataFrame, kept: dict, inputs, floors: dict) -> list[str]:
    """Cutoff-to-cutoff spread of the quality bars, each gap's bootstrap standard error, each
    ECE beside its noise floor, and a diagnostic blend: the mean of the torch and XGBoost
    logits (both already calibrated), scored on each cutoff."""
    from scipy.special import expit, logit

    from ml_jobs.users.metrics import roc_auc

    part = metrics[metrics["segment"] == "all"]

    def table(metric: str) -> pd.DataFrame:
        rows = part[part["metric"] == metric]
        return rows.pivot_table(index="cutoff", columns="model_name", values="value")

    auc, hr, ece = table("roc_auc"), table("hr_at_10"), table("ece")
    gaps = auc["torch_sequence_propensity"] - auc["xgboost_propensity"]
    ratios = hr["torch_sequence_recommendations"] / hr[list(BASELINES)].max(axis=1)
    dates = inputs.train_all.cutoff_ts.dt.date.to_numpy()
    blend, errors = [], []
    for cutoff, out in sorted(kept.items()):
        y = inputs.train_all.purchased[dates == cutoff].astype(bool)
        p_torch = np.clip(out.propensity["torch_sequence_propensity"][0], 1e-6, 1 - 1e-6)
        p_xgb = np.clip(out.propensity["xgboost_propensity"][0], 1e-6, 1 - 1e-6)
        mixed = expit((logit(p_torch) + logit(p_xgb)) / 2)
        blend.append(roc_auc(y, mixed) - roc_auc(y, p_xgb))
        errors.append(auc_gap_error(y, p_torch, p_xgb))

    def fmt_list(xs, spec: str = "+.4f") -> str:
        return ", ".join(f"{x:{spec}}" for x in xs)

    torch_ece = ece["torch_sequence_propensity"]
    return [
        f"Per cutoff: torch - XGBoost ROC-AUC [{fmt_list(gaps)}] (spread "
        f"{gaps.max() - gaps.min():.4f}; bootstrap standard error of each cutoff's gap "
        f"[{fmt_list(errors, '.4f')}]); torch ECE [{fmt_list(torch_ece, '.4f')}] against the "
        f"noise floor [{fmt_list(floors.values(), '.4f')}]; torch HR@10 / that cutoff's best "
        f"baseline [{fmt_list(ratios, '.3f')}] (spread {ratios.max() - ratios.min():.3f}); "
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


def calibration_note(config: UserModelsConfig) -> str:
    k = config.calibration_cutoffs
    if k == 0:
        return (
            "none: both propensity models train on every training cutoff and their own "
            "probabilities are used, so before = after"
        )
    held = "the newest training cutoff" if k == 1 else f"the newest {k} training cutoffs, pooled"
    return (
        f"Platt scaler of each propensity model fitted on {held}, held out of fitting; they "
        "precede the evaluated cutoff"
    )


def heading(shop: ShopConfig) -> str:
    """The RESULTS.md section title: the demo shop's, or one per larger shop size."""
    if shop.users == DEMO_USERS:
        return "## User models (bench/user_models.py)"
    return f"## User models, {shop.users:,}-user shop (bench/user_models.py --users {shop.users})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="built shop home (default: a fresh temp one)")
    parser.add_argument("--users", type=int, help=f"shoppers (default: the demo's {DEMO_USERS})")
    parser.add_argument("--cutoffs", type=int, default=3, help="backtest cutoffs")
    parser.add_argument(
        "--calibration-cutoffs",
        type=int,
        default=UserModelsConfig().calibration_cutoffs,
        help="newest training cutoffs held out to fit a Platt scaler on (0: no scaler)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="scoring repetitions")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    quiet_environment()
    shop = shop_config(args.users)
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-users-"))
    paths = build_demo(home, shop)
    config = UserModelsConfig(
        n_cutoffs=args.cutoffs, calibration_cutoffs=args.calibration_cutoffs
    ).with_threads(args.threads)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    inputs = load_inputs(paths, config, console)
    timings = {"load": time.perf_counter() - t0}
    t0 = time.perf_counter()
    kept: dict = {}
    metrics = inputs.backtest(config, console.log, keep=kept)
    timings["backtest"] = time.perf_counter() - t0
    dates = inputs.train_all.cutoff_ts.dt.date.to_numpy()
    t0 = time.perf_counter()
    fitted = fit_models(
        inputs.train_all.subset(np.isin(dates, inputs.final_days)),
        inputs.feature_names,
        inputs.catalog,
        config,
        console.log,
    )
    timings["fit"] = time.perf_counter() - t0
    score_times = [score_all_users(paths, inputs, fitted, config) for _ in range(args.repeats)]
    text = report(shop, paths, inputs, config, metrics, kept, timings, score_times, args.threads)
    print(text)
    if not args.no_record:
        record(text, heading(shop))
        print(f"recorded in {RESULTS}")


def report(
    shop: ShopConfig,
    paths: Paths,
    inputs,
    config: UserModelsConfig,
    metrics: pd.DataFrame,
    kept: dict,
    timings: dict[str, float],
    score_times: list[float],
    threads: int,
) -> str:
    """The RESULTS.md section of one run."""
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
    floors = ece_noise_floor(
        {c: out.propensity["torch_sequence_propensity"][0] for c, out in kept.items()}
    )
    floor = float(np.mean(list(floors.values())))
    ceiling = oracle(paths, inputs, shop)
    ece_before = {
        m: everyone.loc[m, "ece_uncalibrated"]
        for m in ("torch_sequence_propensity", "xgboost_propensity")
    }
    t_score = statistics.median(score_times)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"CPU only, {threads} threads; load average {os.getloadavg()[0]:.1f} at the end "
        "(times are upper bounds when it is high)"
    )
    rows_per_cutoff = round(
        float(np.mean([len(out.propensity["xgboost_propensity"][0]) for out in kept.values()]))
    )
    which = (
        "Demo shop (ShopConfig defaults)"
        if shop.users == DEMO_USERS
        else f"Larger shop: ShopConfig defaults but {shop.users:,} users and demand_scale "
        f"{shop.demand_scale:g}"
    )
    bars = [
        f"- torch ROC-AUC - XGBoost ROC-AUC = {auc_gap:+.4f} (bar >= +0.01): "
        f"{'met' if auc_gap >= 0.01 else 'NOT met'}",
        f"- torch ECE = {ece:.4f} (bar <= 0.02): {'met' if ece <= 0.02 else 'NOT met'}; "
        f"noise floor of a perfectly calibrated model on these users {floor:.4f}",
        f"- torch HR@10 / best baseline ({best_name}) = {hr_ratio:.3f} (bar >= 1.2): "
        f"{'met' if hr_ratio >= 1.2 else 'NOT met'}",
        f"- scoring all {n_users} users (features + sequences + all models), median of "
        f"{len(score_times)}: {t_score:.1f} s (bar < 60 s): "
        f"{'met' if t_score < 60 else 'NOT met'}",
    ]
    xgb_ece = everyone.loc["xgboost_propensity", "ece"]
    return "\n".join(
        [
            f"{heading(shop)} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"{which}, {len(inputs.tests)} weekly backtest cutoffs "
            f"{[str(c) for c in inputs.tests]} (~{rows_per_cutoff:,} users scored on each), "
            f"training on {config.train_cutoffs} labelled cutoffs each. {machine}.",
            "",
            *bars,
            "",
            f"Calibration ({calibration_note(config)}): ECE before -> after: torch "
            f"{ece_before['torch_sequence_propensity']:.4f} -> {ece:.4f}, XGBoost "
            f"{ece_before['xgboost_propensity']:.4f} -> {xgb_ece:.4f}.",
            "",
            *per_cutoff(metrics, kept, inputs, floors),
            (
                "Oracle (generator's hidden parameters and true demand): ROC-AUC "
                f"{ceiling['roc_auc']:.4f} (XGBoost + "
                f"{ceiling['roc_auc'] - everyone.loc['xgboost_propensity', 'roc_auc']:.4f}), "
                f"HR@10 {ceiling['hr_at_10']:.4f} "
                f"({ceiling['hr_at_10'] / everyone.loc[best_name, 'hr_at_10']:.3f} x {best_name})."
                if ceiling
                else "Oracle: not computed (not a shop this bench generated)."
            ),
            "",
            f"Timings: load + Feast features {timings['load']:.1f} s, backtest "
            f"{timings['backtest']:.1f} s, final fit {timings['fit']:.1f} s, scoring runs "
            f"{[round(t, 1) for t in score_times]} s.",
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


def record(text: str, title: str) -> None:
    """Replace the section called `title` in RESULTS.md (or append one). Hand-written
    paragraphs of the old section that start with "Notes (" are kept after the new text."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# basketcast results\n\n"
    found = re.search(rf"^{re.escape(title)}( — .*)?$", old, flags=re.MULTILINE)
    if found is None:
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")
        return
    start = found.start()
    rest = old[start:].split("\n")
    end = next((i for i, line in enumerate(rest[1:], 1) if line.startswith("#")), len(rest))
    section, tail = rest[:end], "\n".join(rest[end:])
    notes = next((i for i, line in enumerate(section) if line.startswith("Notes (")), None)
    kept = "\n".join(section[notes:]).rstrip("\n") + "\n\n" if notes is not None else ""
    RESULTS.write_text(old[:start] + text + "\n" + kept + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
