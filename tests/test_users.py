"""User models end to end on a tiny synthetic shop: real dbt, Feast, DuckDB, XGBoost, torch."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from ml_jobs import pipeline
from ml_jobs.features import online_features
from ml_jobs.users import baselines, data, signals
from ml_jobs.users.backtest import MODELS, PROPENSITY, UserModelsConfig
from ml_jobs.users.baselines import XGBoostPropensityParams
from ml_jobs.users.champion import USER_PRODUCTS, predict_user_champions
from ml_jobs.users.job import run_user_models
from ml_jobs.users.serving import NoPropensityModelError, load_propensity_scorer
from ml_jobs.users.train import TrainConfig

QUIET = Console(quiet=True)
TINY = UserModelsConfig(
    n_cutoffs=1,
    train_cutoffs=3,
    max_len=20,
    xgboost=XGBoostPropensityParams(n_estimators=30, nthread=1),
    torch=TrainConfig(epochs=4, batch_size=64, lr=1e-2, threads=1, d_model=16, d_user=16),
)


@pytest.fixture(scope="module")
def shop(module_home):
    """A 300-user, 40-item, 70-day shop through dbt and Feast, then one user models job."""
    pipeline.generate(module_home, users=300, items=40, days=70)
    pipeline.build_warehouse(module_home)
    pipeline.publish_features(module_home)
    result = run_user_models(module_home, TINY, QUIET)
    return module_home, result


def _query(paths, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).df()


def test_label_model_is_point_in_time(shop) -> None:
    paths, _ = shop
    labels = data.load_labels(paths)
    assert not labels.duplicated(["user_id", "cutoff_date"]).any()
    # Weekly cutoffs whose 7-day window ends inside the data.
    days = sorted(labels["cutoff_date"].unique())
    assert all((b - a).days == 7 for a, b in zip(days, days[1:], strict=False))
    truth = _query(
        paths,
        """SELECT l.user_id, l.cutoff_date, l.purchased,
               (SELECT count(*) FROM staging.stg_shop__events e
                WHERE e.user_id = l.user_id AND e.event_type = 'purchase'
                  AND e.event_ts >= l.cutoff_ts
                  AND e.event_ts < l.cutoff_ts + INTERVAL 7 DAY) AS direct
        FROM ml.ml_user_propensity_labels l""",
    )
    assert ((truth["direct"] > 0).astype(int) == truth["purchased"]).all()
    assert 0.05 < truth["purchased"].mean() < 0.95


def test_sequences_never_see_the_cutoff_or_later(shop) -> None:
    paths, _ = shop
    catalog = data.load_catalog(paths)
    events = data.load_events(paths, catalog)
    cutoff = pd.Timestamp(events.last_day - dt.timedelta(days=10)).tz_localize("UTC")
    users = data.scoring_population(events, cutoff, 90)
    seq = data.sequences(events, users, cutoff, max_len=15)
    real = seq.kind > 0
    assert real.any()
    # log1p of hours before the cutoff: every real event is strictly before it.
    assert (np.expm1(seq.log_gap_hours[real]) > 0).all()
    # The newest event of each user equals the last one before the cutoff in the warehouse.
    frame = _query(
        paths,
        """SELECT user_id, max(event_ts) AS newest FROM staging.stg_shop__events
        WHERE event_ts < ? GROUP BY user_id""",
        [cutoff.to_pydatetime()],
    ).set_index("user_id")
    newest_hours = (cutoff - pd.to_datetime(frame.loc[users, "newest"], utc=True)).dt
    expected = np.log1p(newest_hours.total_seconds().to_numpy() / 3600)
    assert np.allclose(seq.log_gap_hours[:, -1], expected, atol=1e-3)
    items, cats = data.window_targets(
        events, users, cutoff, 7, catalog.n_items, catalog.n_categories
    )
    bought = _query(
        paths,
        """SELECT count(*) AS n FROM staging.stg_shop__events
        WHERE event_type = 'purchase' AND event_ts >= ? AND event_ts < ?
          AND user_id IN (SELECT unnest(?::BIGINT[]))""",
        [cutoff.to_pydatetime(), (cutoff + pd.Timedelta(days=7)).to_pydatetime(), users.tolist()],
    )["n"][0]
    assert items.sum() == bought
    assert cats.sum() >= items.sum()


def test_job_writes_three_tables_and_registers_every_run(shop) -> None:
    paths, result = shop
    assert {run.model_name for run in result.runs} == set(MODELS)
    assert all(run.status == "succeeded" for run in result.runs), result.runs
    runs = _query(paths, "SELECT * FROM ml.model_runs WHERE status = 'succeeded'")
    assert set(MODELS) <= set(runs["model_name"])
    assert set(runs.loc[runs["model_name"].str.startswith("torch"), "model_kind"]) == {"torch"}

    propensity = _query(paths, "SELECT * FROM predictions.user_purchase_propensity_latest")
    assert len(propensity) == result.n_users == propensity["user_id"].nunique()
    assert propensity["p_purchase"].between(0, 1).all()
    assert (propensity["expected_spend"] >= 0).all()
    assert set(propensity["decile"]) == set(range(1, 11))
    top = propensity.groupby("decile")["p_purchase"].mean()
    assert top.is_monotonic_decreasing
    assert (propensity["window_days"] == 7).all()
    assert propensity["as_of_date"].iloc[0].date() == result.as_of_date

    affinity = _query(paths, "SELECT * FROM predictions.user_category_affinity_latest")
    n_categories = affinity["category_id"].nunique()
    sizes = affinity.groupby("user_id").size()
    assert (sizes == n_categories).all() and len(sizes) == result.n_users
    assert affinity.groupby("user_id")["score"].sum().between(0.999, 1.001).all()
    first = affinity[affinity["rank"] == 1].set_index("user_id")["score"]
    assert (first >= affinity.groupby("user_id")["score"].max() - 1e-12).all()

    recs = _query(paths, "SELECT * FROM predictions.user_item_recommendations_latest")
    assert (recs.groupby("user_id").size() == TINY.top_k).all()
    assert not recs.duplicated(["user_id", "item_id"]).any()
    items = _query(paths, "SELECT item_id FROM staging.stg_shop__items")["item_id"]
    assert recs["item_id"].isin(items).all()


def test_one_champion_per_product_and_backtest_rows(shop) -> None:
    paths, result = shop
    for product in (
        "user_purchase_propensity",
        "user_category_affinity",
        "user_item_recommendations",
    ):
        champions = _query(
            paths,
            f"""SELECT run_id FROM ml.model_runs WHERE is_champion
            AND run_id IN (SELECT run_id FROM predictions.{product})""",
        )
        assert len(champions) == 1, product
        assert champions["run_id"][0] == result.champions[product]
        served = _query(paths, f"SELECT DISTINCT run_id FROM predictions.{product}_latest")
        assert served["run_id"].tolist() == [result.champions[product]]
    metrics = _query(paths, "SELECT * FROM ml.backtest_metrics")
    mine = metrics[metrics["model_name"].isin(list(MODELS))]
    assert {"all", "returning", "cold_start"} <= set(mine["segment"])
    auc = mine[(mine["metric"] == "roc_auc") & (mine["segment"] == "all")]
    assert set(auc["model_name"]) == {"xgboost_propensity", "torch_sequence_propensity"}
    by_model = auc.set_index("model_name")["value"]
    assert by_model["xgboost_propensity"] > 0.6  # real signal, not a coin
    assert by_model["torch_sequence_propensity"] > 0.55
    hr = mine[(mine["metric"] == "hr_at_10") & (mine["segment"] == "all")]
    assert set(hr["model_name"]) == {
        m for m, (p, _) in MODELS.items() if p == "user_item_recommendations"
    }
    assert hr["value"].between(0.0, 1.0).all()


def test_serving_scorer_matches_the_batch_xgboost_scores(shop) -> None:
    paths, result = shop
    scorer = load_propensity_scorer(paths)
    assert scorer.feature_service == "propensity_v1"
    assert scorer.model_name == "xgboost_propensity"
    batch = _query(
        paths,
        "SELECT user_id, p_purchase, expected_spend FROM predictions.user_purchase_propensity "
        "WHERE run_id = ? ORDER BY user_id LIMIT 25",
        [scorer.run_id],
    )
    features = online_features(paths, "user", batch["user_id"].tolist(), scorer.feature_service)
    scored = scorer.score(features)
    assert list(scored.columns) == ["user_id", "p_purchase", "expected_spend"]
    assert scored["user_id"].tolist() == batch["user_id"].tolist()
    assert np.allclose(scored["p_purchase"], batch["p_purchase"], atol=1e-6)
    assert np.allclose(scored["expected_spend"], batch["expected_spend"], atol=1e-4)
    with pytest.raises(ValueError, match="propensity_v1"):
        scorer.score(features.drop(columns=[scorer.feature_names[0]]))


def test_excluding_repurchase_removes_bought_items(shop) -> None:
    paths, _ = shop
    catalog = data.load_catalog(paths)
    events = data.load_events(paths, catalog)
    cutoff = pd.Timestamp(events.last_day).tz_localize("UTC")
    users = data.scoring_population(events, cutoff, 90)[:50]
    scores = baselines.popularity_scores(events, users, cutoff, catalog.n_items)
    masked = baselines.exclude_purchased(scores, events, users, cutoff)
    bought = data.purchased_before(events, users, cutoff, catalog.n_items).toarray()
    assert bought.any()
    assert np.isneginf(masked[bought]).all() and np.isfinite(masked[~bought]).all()


def test_clear_errors_without_inputs(home) -> None:
    with pytest.raises(NoPropensityModelError, match="run the pipeline"):
        load_propensity_scorer(home)
    with pytest.raises(data.MissingTrainingDataError, match="basketcast build"):
        run_user_models(home, dataclasses.replace(TINY, use_torch=False), QUIET)


def test_report_section_lists_every_user_model(shop) -> None:
    from ml_jobs.report import users as report_users

    html = report_users.section(shop[0])
    for name in MODELS:
        assert name in html
    assert "cold_start" in html and "hr_at_10" in html


def _block(paths, product: str, run_id: str, as_of: dt.date) -> pd.DataFrame:
    frame = _query(
        paths,
        f"SELECT * FROM predictions.{product} WHERE run_id = ? AND as_of_date = ?",
        [run_id, as_of],
    )
    keys = [c for c in ("user_id", "category_id", "item_id") if c in frame.columns]
    return frame.drop(columns=["predicted_at"]).sort_values(keys).reset_index(drop=True)


def test_daily_champion_scoring_reproduces_the_training_write_back(shop) -> None:
    paths, result = shop
    champions = {run.product: run for run in result.runs if run.run_id in result.champions.values()}
    trained = {p: _block(paths, p, r.run_id, result.as_of_date) for p, r in champions.items()}
    written = predict_user_champions(paths)  # as of the last day: what training wrote
    assert {w.product for w in written} == set(USER_PRODUCTS)
    for w in written:
        assert w.run_id == result.champions[w.product] and w.as_of_date == result.as_of_date
        again = _block(paths, w.product, w.run_id, w.as_of_date)
        assert w.rows == len(again) == len(trained[w.product])
        pd.testing.assert_frame_equal(again, trained[w.product], check_exact=False, rtol=1e-6)


def test_daily_champion_scoring_of_an_earlier_day_adds_a_block(shop) -> None:
    paths, result = shop
    day = result.as_of_date - dt.timedelta(days=3)
    first = predict_user_champions(paths, as_of=day)
    second = predict_user_champions(paths, as_of=day)  # a rerun replaces, never duplicates
    assert [w.rows for w in first] == [w.rows for w in second]
    events = data.load_events(paths, data.load_catalog(paths))
    cutoff = pd.Timestamp(day + dt.timedelta(days=1)).tz_localize("UTC")
    active = set(data.scoring_population(events, cutoff, 90).tolist())
    for w in second:
        block = _block(paths, w.product, w.run_id, day)
        assert len(block) == w.rows > 0
        assert set(block["user_id"]) == active
        latest = _query(paths, f"SELECT DISTINCT as_of_date FROM predictions.{w.product}_latest")
        assert latest["as_of_date"].dt.date.tolist() == [result.as_of_date]  # newest stays
    propensity = _block(paths, PROPENSITY, result.champions[PROPENSITY], day)
    assert propensity["p_purchase"].between(0, 1).all()
    assert sorted(propensity["decile"].unique()) == list(range(1, 11))


def test_activity_signals_count_what_the_warehouse_holds(shop) -> None:
    paths, _ = shop
    catalog = data.load_catalog(paths)
    events = data.load_events(paths, catalog)
    cutoff = pd.Timestamp(events.last_day - dt.timedelta(days=5)).tz_localize("UTC")
    users = data.scoring_population(events, cutoff, 90)[:40]
    cut = signals.cutoff_seconds(events, len(users), cutoff)
    table = signals.activity(events, users, cut)
    assert table.shape == (len(users), signals.activity_width())
    n_types = len(data.EVENT_TYPES) - 1
    purchases_28d = np.expm1(table[:, 2 * (n_types + 1) + data.PURCHASE - 1])
    truth = _query(
        paths,
        """SELECT user_id, count(*) FILTER (WHERE event_ts >= ? - INTERVAL 28 DAY) AS n28,
               max(event_ts) AS newest
        FROM staging.stg_shop__events WHERE event_type = 'purchase' AND event_ts < ?
          AND user_id IN (SELECT unnest(?::BIGINT[])) GROUP BY user_id""",
        [cutoff.to_pydatetime(), cutoff.to_pydatetime(), users.tolist()],
    ).set_index("user_id")
    expected = truth["n28"].reindex(users).fillna(0).to_numpy()
    assert np.allclose(purchases_28d, expected, atol=1e-3)
    recency = 5 * (n_types + 1) + n_types + 2 * (data.PURCHASE - 1)
    bought = truth["newest"].reindex(users).notna().to_numpy()
    hours = (cutoff - pd.to_datetime(truth["newest"].reindex(users)[bought], utc=True)).dt
    assert np.allclose(
        np.expm1(table[bought, recency]),
        hours.total_seconds().to_numpy() / 3600,
        rtol=1e-4,
        atol=2 / 3600,  # the event log keeps whole seconds
    )
    assert (table[~bought, recency + 1] == 1).all()
    shares = np.exp(signals.category_share(events, users, cut, catalog.n_categories))
    assert shares.shape == (len(users), len(signals.SHARE_DAYS), catalog.n_categories)
    assert ((shares > 0) & (shares < 1)).all()


def test_daily_scoring_keeps_a_products_rows_when_its_artifact_is_unreadable(shop) -> None:
    paths, result = shop
    run_id = result.champions[PROPENSITY]
    folder = paths.artifacts / run_id
    before = _query(paths, f"SELECT count(*) AS n FROM predictions.{PROPENSITY}")["n"][0]
    day = result.as_of_date - dt.timedelta(days=1)
    folder.rename(folder.with_name(run_id + ".moved"))
    try:
        written = {w.product: w for w in predict_user_champions(paths, as_of=day)}
    finally:
        folder.with_name(run_id + ".moved").rename(folder)
    skipped = written[PROPENSITY]  # both propensity models read a saved artifact
    assert skipped.rows == 0 and "cannot load" in skipped.skipped
    after = _query(paths, f"SELECT count(*) AS n FROM predictions.{PROPENSITY}")["n"][0]
    assert after == before  # nothing written, nothing removed
    assert all(w.rows > 0 and w.skipped is None for p, w in written.items() if p != PROPENSITY)
