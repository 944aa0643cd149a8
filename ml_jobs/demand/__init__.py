"""Item demand forecasting: p10/p50/p90 units per item per day for the next four weeks.

data.py            read marts.fct_item_daily_demand (+ planned promotions) from the warehouse
base.py            the forecaster interface and forecast frame
seasonal_naive.py  weekly seasonal naive baseline
xgb.py             global XGBoost multi-quantile forecaster
metrics.py         WAPE, MASE, pinball loss, coverage, bias
backtest.py        rolling-origin backtest
job.py             the job: backtest, register, forecast, write back, promote
"""

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
