"""Report section: item demand forecasting. Which model serves, how each scored, what it looks like.

Reads the registry (`ml.model_runs`, `ml.backtest_metrics`), the demand fact table and the
backtest forecasts each demand run keeps beside its artifacts; writes nothing.

- headline table: every model's newest succeeded run, backtest means over its cutoffs (all items,
  all horizons), with WAPE and pinball ratios to the seasonal naive and XGBoost baselines;
- the same scores by segment (fast / slow / intermittent / new items);
- WAPE and pinball loss by horizon;
- forecast vs actual for sample items (one per segment) at the newest backtest cutoff: the
  champion's p10-p90 band, every model's p50, what sold and, on synthetic data, the true demand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ml_jobs.config import Paths
from ml_jobs.demand.data import DEMAND_TABLE
from ml_jobs.demand.job import BACKTEST_FORECASTS
from ml_jobs.registry import DEMAND_PRODUCT
from ml_jobs.report.html import figure, note, table
from ml_jobs.sources import reader
from ml_jobs.warehouse import connect

TITLE = "Item demand forecast"
HEADLINE = (
    "wape",
    "wape_vs_truth",
    "mase",
    "bias",
    "pinball_p10",
    "pinball_p50",
    "pinball_p90",
    "pinball_mean",
    "coverage_p10_p90",
)
BASELINES = {"seasonal_naive": "naive", "xgboost_quantile": "xgb"}
COLORS = {
    "seasonal_naive": "tab:gray",
    "xgboost_quantile": "tab:orange",
    "torch_quantile": "tab:blue",
}
WEEKLY_SUFFIX = "_weekly"  # demand models run on the weekly grain are named <model>_weekly


def color(model_name: str) -> str | None:
    return COLORS.get(model_name.removesuffix(WEEKLY_SUFFIX))


def horizon_unit(model_names: pd.Series) -> str:
    """ "weeks" when every model ran on the weekly grain, else "days" (horizons count periods)."""
    names = model_names.astype(str)
    return "weeks" if len(names) and names.str.endswith(WEEKLY_SUFFIX).all() else "days"


def latest_runs(paths: Paths) -> pd.DataFrame:
    """Newest succeeded run of every demand model that wrote forecasts."""
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(
            f"""SELECT run_id, model_name, model_kind, model_version, trained_at, train_end,
                   is_champion, artifact_uri, device
            FROM ml.model_runs
            WHERE status = 'succeeded'
              AND run_id IN (SELECT DISTINCT run_id FROM predictions.{DEMAND_PRODUCT})
            QUALIFY row_number() OVER (PARTITION BY model_name ORDER BY trained_at DESC) = 1
            ORDER BY model_name"""
        ).df()


def run_metrics(paths: Paths, run_ids: list[str]) -> pd.DataFrame:
    with connect(paths.warehouse, read_only=True) as con:
        return con.execute(
            "SELECT * FROM ml.backtest_metrics WHERE list_contains(?, run_id)", [run_ids]
        ).df()


def headline(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Mean over cutoffs per model of the all-items, all-horizons scores, plus baseline ratios."""
    overall = metrics[(metrics["segment"] == "all") & metrics["horizon"].isna()]
    out = overall.pivot_table(index="model_name", columns="metric", values="value", aggfunc="mean")
    out = out.reindex(columns=[m for m in HEADLINE if m in out.columns])
    out["cutoffs"] = overall.groupby("model_name")["cutoff"].nunique()
    for baseline, short in BASELINES.items():
        if baseline in out.index:
            for metric in ("wape", "pinball_mean"):
                out[f"{metric} / {short}"] = out[metric] / out.loc[baseline, metric]
    champion = set(runs.loc[runs["is_champion"], "model_name"])
    out.index = [f"{name} ★" if name in champion else name for name in out.index]
    out.index.name = "model"
    out.columns.name = None
    return out


def by_segment(metrics: pd.DataFrame) -> pd.DataFrame:
    overall = metrics[metrics["horizon"].isna() & metrics["metric"].isin(["wape", "pinball_mean"])]
    out = overall.pivot_table(
        index=["metric", "model_name"], columns="segment", values="value", aggfunc="mean"
    )
    order = [s for s in ("all", "fast", "slow", "intermittent", "new") if s in out.columns]
    return out[order]


def horizon_plot(metrics: pd.DataFrame) -> str:
    per_h = metrics[metrics["horizon"].notna() & (metrics["segment"] == "all")]
    if per_h.empty:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, metric in zip(axes, ("wape", "pinball_mean"), strict=True):
        part = per_h[per_h["metric"] == metric]
        for name, rows in part.groupby("model_name"):
            curve = rows.groupby("horizon")["value"].mean()
            ax.plot(curve.index, curve.values, label=name, color=color(str(name)))
        ax.set_title(f"{metric} by horizon (mean over cutoffs)")
        ax.set_xlabel(f"{horizon_unit(per_h['model_name'])} ahead")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return figure(fig, "backtest accuracy by horizon")


def sample_items(forecasts: pd.DataFrame, n: int = 4) -> list[int]:
    """One item per segment (the busiest of it), then the busiest others, up to n."""
    volume = forecasts.groupby(["segment", "item_id"])["actual"].sum().reset_index()
    picks: list[int] = []
    for segment in ("fast", "slow", "intermittent", "new"):
        rows = volume[volume["segment"] == segment].sort_values("actual", ascending=False)
        if len(rows):
            picks.append(int(rows["item_id"].iloc[0]))
    for item in volume.sort_values("actual", ascending=False)["item_id"]:
        if len(picks) >= n:
            break
        if int(item) not in picks:
            picks.append(int(item))
    return picks[:n]


def forecast_plot(paths: Paths, runs: pd.DataFrame, target: str | None = None) -> str:
    """Forecast vs actual at the newest backtest cutoff for a few sample items."""
    frames = []
    for row in runs.itertuples():
        path = Path(str(row.artifact_uri)) / BACKTEST_FORECASTS
        if row.artifact_uri and path.exists():
            frames.append(pd.read_parquet(path).assign(model_name=row.model_name))
    if not frames:
        return note("No backtest forecasts saved yet: plots appear after the next forecast run.")
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts["target_date"] = pd.to_datetime(forecasts["target_date"])
    cutoff = pd.to_datetime(forecasts["cutoff"]).max()
    forecasts = forecasts[pd.to_datetime(forecasts["cutoff"]) == cutoff]
    champion = runs.loc[runs["is_champion"], "model_name"]
    band_model = champion.iloc[0] if len(champion) else forecasts["model_name"].iloc[0]
    items = sample_items(forecasts[forecasts["model_name"] == band_model])
    weekly = horizon_unit(forecasts["model_name"]) == "weeks"
    start = cutoff - pd.Timedelta(days=84 if weekly else 42)
    with reader(paths, target) as source:  # the warehouse the job's inputs came from
        history = source.frame(
            f"""SELECT item_id, demand_date, units_sold, is_stockout FROM {DEMAND_TABLE}
            WHERE item_id IN ({", ".join(str(int(i)) for i in items)})
              AND demand_date > DATE '{start.date().isoformat()}'"""
        )
    history["demand_date"] = pd.to_datetime(history["demand_date"])
    if weekly:  # weekly forecasts sit on the week's Monday: compare them with weekly sales
        history["demand_date"] = history["demand_date"].dt.to_period("W-SUN").dt.start_time
        history = history.groupby(["item_id", "demand_date"], as_index=False).agg(
            units_sold=("units_sold", "sum"), is_stockout=("is_stockout", "any")
        )

    fig, axes = plt.subplots(len(items), 1, figsize=(11, 2.6 * len(items)), squeeze=False)
    for ax, item in zip(axes[:, 0], items, strict=True):
        sold = history[history["item_id"] == item].sort_values("demand_date")
        ok = ~sold["is_stockout"].astype(bool)
        ax.plot(sold["demand_date"][ok], sold["units_sold"][ok], "k.", ms=4, label="sold")
        ax.plot(sold["demand_date"][~ok], sold["units_sold"][~ok], "rx", ms=5, label="stock-out")
        mine = forecasts[forecasts["item_id"] == item].sort_values("target_date")
        band = mine[mine["model_name"] == band_model]
        ax.fill_between(
            band["target_date"],
            band["p10"],
            band["p90"],
            alpha=0.25,
            color=color(band_model) or "tab:blue",
            label=f"{band_model} p10-p90",
        )
        for name, rows in mine.groupby("model_name"):
            ax.plot(
                rows["target_date"],
                rows["p50"],
                color=color(str(name)),
                lw=1.5,
                label=f"{name} p50",
            )
        if "expected" in band.columns and band["expected"].notna().any():
            ax.plot(band["target_date"], band["expected"], "g--", lw=1, label="true demand")
        ax.axvline(cutoff, color="k", lw=0.8, alpha=0.5)
        segment = band["segment"].iloc[0] if len(band) else "?"
        ax.set_title(f"item {item} ({segment})", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    text = f"Backtest cutoff {cutoff.date()}: forecasts made then, against what sold after."
    return note(text) + figure(fig, "forecast vs actual for sample items")


def section(paths: Paths, target: str | None = None) -> str:
    if not paths.warehouse.exists():
        return f"<h2>{TITLE}</h2>" + note(
            "No warehouse yet: run `basketcast build`, then `basketcast forecast`."
        )
    runs = latest_runs(paths)
    if runs.empty:
        return f"<h2>{TITLE}</h2>" + note("No demand model run yet: run `basketcast forecast`.")
    metrics = run_metrics(paths, runs["run_id"].tolist())
    champion = runs[runs["is_champion"]]
    served = (
        f"serving {champion['model_name'].iloc[0]} ({champion['run_id'].iloc[0]}), "
        f"data up to {pd.Timestamp(champion['train_end'].iloc[0]).date()}"
        if len(champion)
        else "no champion yet"
    )
    parts = [
        f"<h2>{TITLE}</h2>",
        note(
            f"{served}. ★ = champion. Backtest means over rolling cutoffs; lower is better "
            "except coverage (0.8 = calibrated p10-p90)."
        ),
        table(headline(metrics, runs)),
        "<h3>By segment</h3>",
        table(by_segment(metrics)),
        horizon_plot(metrics),
        "<h3>Forecast vs actual</h3>",
        forecast_plot(paths, runs, target),
        note(
            f"devices: {', '.join(f'{r.model_name}={r.device}' for r in runs.itertuples())}; "
            f"built {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        ),
    ]
    return "\n".join(p for p in parts if p)
