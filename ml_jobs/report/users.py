"""Report section: user models. Which model serves each user product and how each scored.

Reads the registry (`ml.model_runs`, `ml.backtest_metrics`) and the propensity table; writes
nothing. For every model's newest succeeded run: backtest means over its cutoffs per segment
(all users, returning, cold start) — propensity ROC-AUC, PR-AUC, log loss, ECE (after and
before the Platt scaler) and top-decile lift; category NLL and top-1 hit; HR@10, NDCG@10 and
MAP@12 by full ranking — and the observed purchase rate per predicted decile is left to the
SQL users (predictions tables).
"""

from __future__ import annotations

import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.report.html import note, table
from ml_jobs.users.backtest import MODELS
from ml_jobs.warehouse import connect

TITLE = "User models"
PRODUCT_METRICS = {
    "user_purchase_propensity": [
        "roc_auc",
        "pr_auc",
        "log_loss",
        "ece",
        "ece_uncalibrated",
        "top_decile_lift",
    ],
    "user_category_affinity": ["category_nll", "category_top1"],
    "user_item_recommendations": ["hr_at_10", "ndcg_at_10", "map_at_12"],
}


def _newest_runs(paths: Paths) -> pd.DataFrame:
    names = list(MODELS)
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(
            """SELECT run_id, model_name, is_champion, trained_at FROM ml.model_runs
            WHERE status = 'succeeded' AND model_name IN (SELECT unnest(?::VARCHAR[]))
            QUALIFY row_number() OVER (PARTITION BY model_name ORDER BY trained_at DESC) = 1""",
            [names],
        ).df()


def section(paths: Paths, target: str | None = None) -> str:
    if not paths.warehouse.exists():
        return ""
    try:
        runs = _newest_runs(paths)
    except Exception:  # the registry does not exist yet
        return ""
    if runs.empty:
        return ""
    with connect(paths.warehouse, read_only=True) as con:
        metrics = con.execute(
            "SELECT * FROM ml.backtest_metrics WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [runs["run_id"].tolist()],
        ).df()
    parts = [f"<h2>{TITLE}</h2>"]
    parts.append(
        note(
            "Temporal backtest: each model is fitted on the weekly cutoffs whose 7-day labels "
            "were known and scored on the next cutoff; means over the backtest cutoffs. "
            "Champion = the run the *_latest view serves."
        )
    )
    champions = set(runs.loc[runs["is_champion"], "model_name"])
    for product, names in PRODUCT_METRICS.items():
        models = [m for m, (p, _) in MODELS.items() if p == product]
        part = metrics[metrics["model_name"].isin(models) & metrics["metric"].isin(names)]
        if part.empty:
            continue
        wide = part.pivot_table(
            index=["model_name", "segment"], columns="metric", values="value", aggfunc="mean"
        ).reset_index()
        wide.insert(1, "champion", wide["model_name"].isin(champions).map({True: "yes", False: ""}))
        wide = wide.sort_values(["segment", "model_name"])
        parts.append(f"<h3>{product}</h3>")
        shown = [n for n in names if n in wide.columns]
        parts.append(table(wide[["model_name", "champion", "segment", *shown]]))
    return "\n".join(parts)
