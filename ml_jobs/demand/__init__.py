"""Item demand forecasting: p10/p50/p90 units per item per day for the next four weeks.

data.py            read marts.fct_item_daily_demand (+ planned promotions) from the warehouse
base.py            the forecaster interface and forecast frame
seasonal_naive.py  weekly seasonal naive baseline
origin.py          per-item summaries at a forecast origin (shared by XGBoost and torch)
xgb.py             global XGBoost multi-quantile forecaster
torch_model.py     the torch network (dense encoder-decoder, zero-safe quantile head)
torch_data.py      panel -> (item, origin) training windows as tensors
torch_train.py     the training loop: device, seeds, checkpoints/resume, progress
torch_forecaster.py the torch model behind the forecaster interface (fit/predict/save/load)
metrics.py         WAPE, MASE, pinball loss, coverage, bias
backtest.py        rolling-origin backtest, by segment and (synthetic data) against truth
job.py             the job: backtest, register, forecast, write back, promote
champion.py        daily batch prediction with the saved champion (no training)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_jobs.demand.job import (
        DemandJobConfig,
        DemandJobFailed,
        DemandJobResult,
        make_model,
        run_demand_forecast,
    )

__all__ = [
    "DemandJobConfig",
    "DemandJobFailed",
    "DemandJobResult",
    "make_model",
    "run_demand_forecast",
]


def __getattr__(name: str) -> Any:
    """The job's names, imported on first use: the models alone need no warehouse or XGBoost."""
    if name in __all__:
        from ml_jobs.demand import job

        return getattr(job, name)
    raise AttributeError(f"module 'ml_jobs.demand' has no attribute {name!r}")
