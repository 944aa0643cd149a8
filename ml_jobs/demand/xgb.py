"""Global XGBoost quantile forecaster: one booster for every item, horizon and quantile.

Direct multi-horizon: each training row is (item, forecast origin, horizon) with features known
at the origin (recent units, behaviour that leads purchases, item statistics) plus covariates
known for the target day (calendar, planned list price and promotion). One booster learns p10,
p50 and p90 at once (`reg:quantileerror` with three `quantile_alpha`s).

Units are divided by the item's recent level (1 + mean daily units over 28 days) so one model
fits fast and slow movers alike; quantiles scale back exactly because the scale is known at the
origin. Stock-out days are censored demand: they are NaN in every lag and rolling feature and
never a training target.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml_jobs.demand.base import QUANTILES, forecast_frame
from ml_jobs.demand.data import Panel, history_until, known_future, to_panel
from ml_jobs.demand.origin import origin_features
from ml_jobs.demand.seasonal_naive import same_weekday_mean

# Features divided by the item's scale (units-valued), and the rest as they are.
SCALED = (
    "lag_1",
    "lag_7",
    "lag_14",
    "lag_28",
    "same_dow_last",
    "same_dow_mean4",
    "mean_7",
    "mean_28",
    "std_7",
    "std_28",
    "mean_28_no_promo",
    "item_mean",
)
FEATURES = (
    "horizon",
    "dow",
    "day_of_month",
    "month",
    "category_id",
    "scale",
    *SCALED,
    "views_7",
    "views_28",
    "views_trend",
    "carts_7",
    "carts_28",
    "carts_trend",
    "searches_7",
    "searches_28",
    "list_price",
    "discount_pct",
    "target_price",
    "price_ratio",
    "discount_at_origin",
    "promo_share_28",
    "zero_share_90",
    "stockout_share_28",
    "age_days",
)


@dataclass(frozen=True)
class XGBoostQuantileParams:
    num_boost_round: int = 120
    max_depth: int = 5
    learning_rate: float = 0.1
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    max_bin: int = 64
    n_origins: int = 24  # forecast origins sampled for training, newest first
    origin_stride: int = 5  # days between origins (not a multiple of 7: mixes weekdays)
    row_fraction: float = 0.25  # share of (item, origin, horizon) rows kept
    horizon: int = 28  # longest horizon trained
    nthread: int = 2
    seed: int = 0


def feature_rows(
    panel: Panel,
    origin: int,
    list_price: np.ndarray,
    discount_pct: np.ndarray,
) -> pd.DataFrame:
    """FEATURES for every item × horizon 1..H from `origin`, item-major (row = item * H + h-1).

    `list_price` and `discount_pct` are the planned (items, H) covariates of the target days.
    """
    n_items, horizon = list_price.shape
    offsets = np.arange(1, horizon + 1)
    at_origin = origin_features(panel, origin)
    scale = at_origin["scale"]
    targets = pd.DatetimeIndex([panel.day(origin + int(h)) for h in offsets])
    season = panel.season
    same_dow = origin + offsets - season * np.ceil(offsets / season).astype(int)
    target_price = list_price * (1.0 - discount_pct / 100.0)
    paid = at_origin["paid_price_28"][:, None]

    per_target = {
        "same_dow_last": np.where(same_dow >= 0, panel.units[:, np.maximum(same_dow, 0)], np.nan),
        "same_dow_mean4": same_weekday_mean(panel.units, origin, offsets, 4, season),
        "list_price": list_price,
        "discount_pct": discount_pct,
        "target_price": target_price,
        "price_ratio": np.where(paid > 0, target_price / np.where(paid > 0, paid, 1.0), np.nan),
    }
    calendar = {
        "horizon": offsets,
        "dow": targets.dayofweek.to_numpy(),
        "day_of_month": targets.day.to_numpy(),
        "month": targets.month.to_numpy(),
    }
    columns: dict[str, np.ndarray] = {}
    for name in FEATURES:
        if name in calendar:
            values = np.tile(calendar[name], n_items)
        elif name in per_target:
            values = per_target[name].reshape(-1)
        else:
            values = np.repeat(at_origin[name], horizon)
        if name in SCALED:
            values = values / np.repeat(scale, horizon)
        columns[name] = values.astype("float64")
    return pd.DataFrame(columns)


def training_rows(
    panel: Panel, params: XGBoostQuantileParams
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Sampled (features, scaled label, origin) rows from several origins in the history.

    Targets on stock-out days (NaN units) and items not yet launched at the origin are dropped.
    """
    rng = np.random.default_rng(params.seed)
    last = panel.n_days - 1
    origins = [last - 1 - params.origin_stride * k for k in range(params.n_origins)]
    origins = [o for o in origins if o >= panel.span(28) - 1] or [max(0, last - 1)]
    frames, labels, origin_of = [], [], []
    for origin in origins:
        horizon = min(params.horizon, last - origin)
        if horizon < 1:
            continue
        cols = origin + np.arange(1, horizon + 1)
        features = feature_rows(
            panel, origin, panel.list_price[:, cols], panel.discount_pct[:, cols]
        )
        label = (panel.units[:, cols] / features["scale"].to_numpy()[::horizon, None]).reshape(-1)
        keep = (
            ~np.isnan(label)
            & (features["age_days"].to_numpy() >= 0)
            & (rng.random(len(label)) < params.row_fraction)
        )
        frames.append(features[keep])
        labels.append(label[keep])
        origin_of.append(np.full(int(keep.sum()), origin))
    if not frames or sum(len(f) for f in frames) == 0:
        raise ValueError("not enough demand history to train the XGBoost forecaster")
    return pd.concat(frames, ignore_index=True), np.concatenate(labels), np.concatenate(origin_of)


class XGBoostQuantile:
    """One global XGBoost booster predicting p10/p50/p90 units for any item and horizon."""

    name = "xgboost_quantile"
    kind = "xgboost"
    version = "0.1.0"

    def __init__(self, params: XGBoostQuantileParams | None = None) -> None:
        self.config = params or XGBoostQuantileParams()
        self.booster: xgb.Booster | None = None
        self.n_train_rows = 0

    @property
    def params(self) -> dict[str, Any]:
        return asdict(self.config)

    def _xgb_params(self) -> dict[str, Any]:
        p = self.config
        return {
            "objective": "reg:quantileerror",
            "quantile_alpha": list(QUANTILES),
            "tree_method": "hist",
            "max_depth": p.max_depth,
            "eta": p.learning_rate,
            "min_child_weight": p.min_child_weight,
            "subsample": p.subsample,
            "colsample_bytree": p.colsample_bytree,
            "max_bin": p.max_bin,
            "nthread": p.nthread,
            "seed": p.seed,
        }

    def fit(self, history: pd.DataFrame) -> XGBoostQuantile:
        features, label, _ = training_rows(to_panel(history), self.config)
        data = xgb.DMatrix(features, label=label, nthread=self.config.nthread)
        self.booster = xgb.train(
            self._xgb_params(), data, num_boost_round=self.config.num_boost_round
        )
        self.n_train_rows = len(label)
        return self

    def predict(
        self,
        history: pd.DataFrame,
        as_of: dt.date,
        horizon: int = 28,
        future: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        if self.booster is None:
            raise RuntimeError("fit the model before predicting")
        seen = history_until(history, as_of)
        panel = to_panel(seen, end=as_of)
        if future is None:
            future = known_future(seen, as_of, horizon)
        planned = (
            future.set_index(["item_id", "horizon"])
            .reindex(pd.MultiIndex.from_product([panel.item_ids, range(1, horizon + 1)]))
            .fillna({"discount_pct": 0.0})
        )
        shape = (len(panel.item_ids), horizon)
        features = feature_rows(
            panel,
            panel.column(as_of),
            planned["list_price"].to_numpy(dtype="float64").reshape(shape),
            planned["discount_pct"].to_numpy(dtype="float64").reshape(shape),
        )
        data = xgb.DMatrix(features, nthread=self.config.nthread)
        scaled = self.booster.predict(data).reshape(*shape, len(QUANTILES))
        quantiles = scaled * features["scale"].to_numpy().reshape(shape)[..., None]
        return forecast_frame(panel.item_ids, as_of, quantiles, panel.step_days)

    def save(self, directory: Path) -> list[Path]:
        if self.booster is None:
            raise RuntimeError("fit the model before saving it")
        directory.mkdir(parents=True, exist_ok=True)
        model_path = directory / "model.json"
        self.booster.save_model(model_path)
        config_path = directory / "model_config.json"
        payload = {
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "xgboost_params": self._xgb_params(),
            "features": list(FEATURES),
            "n_train_rows": self.n_train_rows,
            "xgboost_version": xgb.__version__,
        }
        config_path.write_text(json.dumps(payload, indent=2))
        return [model_path, config_path]

    @classmethod
    def load(cls, directory: Path) -> XGBoostQuantile:
        """Rebuild a saved forecaster from its artifact folder."""
        payload = json.loads((directory / "model_config.json").read_text())
        model = cls(XGBoostQuantileParams(**payload["params"]))
        model.booster = xgb.Booster(model_file=str(directory / "model.json"))
        return model
