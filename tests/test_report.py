"""The HTML report: built from the registry and backtests of a real (tiny) demand job run."""

from __future__ import annotations

import base64
import re

import pytest
from rich.console import Console
from test_demand import FAST_XGB, build_warehouse, synthetic_demand

import ml_jobs.report as report
from ml_jobs.config import Paths
from ml_jobs.demand import DemandJobConfig, run_demand_forecast
from ml_jobs.demand.data import load_truth

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    frame, promotions = synthetic_demand(n_items=10, n_days=130, seed=2)
    paths = build_warehouse(tmp_path_factory.mktemp("report") / "home", frame, promotions)
    # the generator writes truth beside synthetic data: here, the demand itself stands in
    truth_dir = paths.truth / "item_daily_demand"
    truth_dir.mkdir(parents=True)
    truth = frame[["item_id", "demand_date"]].assign(
        expected_units=frame["units_sold"].astype(float)
    )
    truth.to_parquet(truth_dir / "part-0.parquet")
    config = DemandJobConfig(
        nthread=1, models=("seasonal_naive", "xgboost_quantile"), xgboost=FAST_XGB
    )
    result = run_demand_forecast(paths, config, Console(quiet=True))
    path = report.report_path(paths)
    return {"paths": paths, "result": result, "html": path.read_text(), "path": path}


def test_demand_job_writes_the_report_with_tables_and_plots(built):
    html, result = built["html"], built["result"]
    assert built["path"] == built["paths"].home / "reports" / "report.html"
    assert "<h2>Item demand forecast</h2>" in html
    champion = next(run for run in result.runs if run.run_id == result.champion_run_id)
    assert f"{champion.model_name} ★" in html and champion.run_id in html
    for model in ("seasonal_naive", "xgboost_quantile"):
        assert model in html
    for column in ("wape", "pinball_mean", "coverage_p10_p90", "wape_vs_truth", "wape / naive"):
        assert column in html
    for segment in ("fast", "slow"):
        assert f"<th>{segment}</th>" in html
    images = PNG.findall(html)
    assert len(images) == 2  # accuracy by horizon, forecast vs actual
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html  # self-contained


def test_truth_scores_reach_the_backtest_table(built):
    backtest = built["result"].backtest
    truth = backtest[backtest["metric"] == "wape_vs_truth"]
    assert set(truth["model_name"]) == {"seasonal_naive", "xgboost_quantile"}
    # truth here is the observed demand itself, so wape_vs_truth equals plain WAPE where no
    # stock-out hides a day; stock-out days count against truth only, so it can only be higher
    overall = backtest[(backtest["segment"] == "all") & backtest["horizon"].isna()]
    pivot = overall.pivot_table(index=["model_name", "cutoff"], columns="metric", values="value")
    assert (pivot["wape_vs_truth"] >= pivot["wape"] - 1e-9).all()
    assert load_truth(built["paths"].truth) is not None
    assert load_truth(built["paths"].home / "nowhere") is None


def test_a_failing_section_shows_its_error_and_the_others_still_render(built, monkeypatch):
    def broken(paths: Paths, target: str | None = None) -> str:
        raise LookupError("users table missing: run the user models first")

    sections = report.sections()
    assert [title for title, _ in sections][0] == "Item demand forecast"
    monkeypatch.setattr(report, "sections", lambda: [*sections, ("Users", broken)])
    html = report.build_report(built["paths"]).read_text()
    assert "section failed: LookupError: users table missing" in html
    assert "<h2>Item demand forecast</h2>" in html


def test_report_of_an_empty_home_says_what_to_run(tmp_path):
    html = report.build_report(Paths(tmp_path)).read_text()
    assert "basketcast forecast" in html
