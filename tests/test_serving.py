"""`basketcast serve`: the FastAPI app over a real Feast online store and a real warehouse.

The home holds the feature exports of tests/test_features.py, materialized into SQLite (and,
for the Redis test, into a private Redis project), and a DuckDB warehouse with one champion
demand run written through ml_jobs.warehouse and ml_jobs.registry.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_features import DAYS, ITEM_FEATURES_V1, USER_FEATURES, USER_FEATURES_V1, write_exports

from ml_jobs import features, registry, warehouse
from ml_jobs.config import Paths
from ml_jobs.serving.app import create_app
from ml_jobs.serving.schemas import ServeConfig

END = DAYS[3] + timedelta(days=1)
RUN_ID = "xgb_quantile-20250305T000000-abc123"
HORIZONS = 5


@pytest.fixture(autouse=True, scope="module")
def _restore_environment() -> Iterator[None]:
    keys = ("BASKETCAST_HOME", "BASKETCAST_REDIS", "BASKETCAST_FEAST_PROJECT")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.pop("BASKETCAST_FEAST_PROJECT", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _forecast_rows() -> pd.DataFrame:
    """Champion forecasts for items 10 and 20: p50 = item_id + horizon."""
    rows = []
    for item_id in (10, 20):
        for h in range(1, HORIZONS + 1):
            p50 = float(item_id + h)
            rows.append(
                {
                    "run_id": RUN_ID,
                    "model_name": "xgb_quantile",
                    "model_version": "1",
                    "as_of_date": dt.date(2025, 3, 4),
                    "predicted_at": dt.datetime(2025, 3, 5, 2, tzinfo=dt.UTC),
                    "item_id": item_id,
                    "target_date": dt.date(2025, 3, 4) + timedelta(days=h),
                    "horizon": h,
                    "p10": p50 - 1,
                    "p50": p50,
                    "p90": p50 + 1,
                }
            )
    return pd.DataFrame(rows)


def _register_champion(paths: Paths) -> None:
    with warehouse.connect(paths.warehouse) as con:
        warehouse.ensure_prediction_schema(con)
        registry.start_run(con, registry.RunRecord(RUN_ID, "xgb_quantile", "xgboost", "1"))
    warehouse.write_predictions(paths.warehouse, "item_demand_forecast", _forecast_rows())
    with warehouse.connect(paths.warehouse) as con:
        registry.finish_run(con, RUN_ID, "succeeded")
        assert registry.promote_if_better(con, RUN_ID).promoted


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    paths = Paths(tmp_path_factory.mktemp("serve").resolve())
    write_exports(paths)
    features.apply(paths)
    assert features.materialize(paths, end=END) == 5
    _register_champion(paths)
    return paths


@pytest.fixture(scope="module")
def client(home: Paths) -> Iterator[TestClient]:
    with TestClient(create_app(ServeConfig(home, max_batch=5))) as test_client:
        yield test_client


def _sdk(paths: Paths, entity: str, ids: list[int], service: str | None, online="sqlite"):
    frame = features.online_features(paths, entity, ids, service=service, online=online)
    return [
        {k: (None if math.isnan(v) else v) for k, v in row.items()}
        for row in frame.drop(columns=frame.columns[0]).to_dict("records")
    ]


def test_features_equal_the_sdk_and_flag_unknown_ids(client: TestClient, home: Paths) -> None:
    ids = [3, 1, 424242, 2]
    response = client.post("/features", json={"entity": "user", "ids": ids})
    assert response.status_code == 200
    body = response.json()
    assert body["join_key"] == "user_id"
    assert [r["id"] for r in body["rows"]] == ids
    assert [r["found"] for r in body["rows"]] == [True, True, False, True]
    assert list(body["rows"][0]["features"]) == USER_FEATURES
    assert [r["features"] for r in body["rows"]] == _sdk(home, "user", ids, None)
    unknown = body["rows"][2]["features"]
    assert set(unknown.values()) == {None}
    # User 2's nullable rates are null, not zero.
    assert body["rows"][3]["features"]["cart_to_purchase_28d"] is None

    items = client.post(
        "/features", json={"entity": "item", "ids": [20, 10], "feature_service": "demand_v1"}
    ).json()
    assert [r["features"] for r in items["rows"]] == _sdk(home, "item", [20, 10], "demand_v1")
    assert list(items["rows"][0]["features"]) == ITEM_FEATURES_V1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"entity": "user"}, 422, "ids: Field required"),
        ({"ids": [1]}, 422, "entity: Field required"),
        ({"entity": "user", "ids": ["1"]}, 422, "ids.0: Input should be a valid integer"),
        ({"entity": "user", "ids": [1.5]}, 422, "ids.0: Input should be a valid integer"),
        ({"entity": "user", "ids": [2**63]}, 422, "ids.0: Input should be less than or equal"),
        ({"entity": "user", "ids": []}, 422, "ids: List should have at least 1 item"),
        ({"entity": "user", "ids": 7}, 422, "ids: Input should be a valid list"),
        ({"entity": "user", "ids": [1], "user_id": 1}, 422, "user_id: Extra inputs"),
        ({"entity": "shop", "ids": [1]}, 404, "unknown entity 'shop'; expected one of"),
        (
            {"entity": "user", "ids": [1], "feature_service": "nope_v9"},
            404,
            "unknown feature service 'nope_v9'",
        ),
        (
            {"entity": "item", "ids": [1], "feature_service": "propensity_v1"},
            404,
            "not keyed by entity 'item'",
        ),
        ({"entity": "user", "ids": list(range(6))}, 413, "ids has 6 ids; at most 5 per request"),
    ],
)
def test_bad_feature_requests_say_what_to_fix(
    client: TestClient, body: dict, status: int, message: str
) -> None:
    response = client.post("/features", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/features", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON decode error" in response.json()["detail"]


def test_health_reports_store_and_models(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["online_store"] == "sqlite"
    assert body["entities"] == {"item": "item_id", "user": "user_id"}
    assert body["feature_services"] == ["demand_v1", "demand_v2", "propensity_v1", "propensity_v2"]
    assert body["demand_model"] == RUN_ID


def test_demand_serves_the_champion_forecast(client: TestClient, home: Paths) -> None:
    response = client.post("/predict/demand", json={"item_ids": [20, 99, 10], "max_horizon": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {
        "run_id": RUN_ID,
        "model_name": "xgb_quantile",
        "model_version": "1",
        "as_of_date": "2025-03-04",
        "predicted_at": "2025-03-05T02:00:00Z",
    }
    rows = body["rows"]
    assert [(r["item_id"], r["found"]) for r in rows] == [(20, True), (99, False), (10, True)]
    assert [f["p50"] for f in rows[0]["forecast"]] == [21.0, 22.0, 23.0]
    assert rows[0]["forecast"][0] == {
        "target_date": "2025-03-05",
        "horizon": 1,
        "p10": 20.0,
        "p50": 21.0,
        "p90": 22.0,
    }
    assert rows[1]["forecast"] is None
    # The item's online demand_v1 features come along (item 10's D3 backfill: 777 units).
    assert rows[2]["features"]["units_7d"] == 777.0
    assert set(rows[1]["features"].values()) == {None}
    everything = client.post("/predict/demand", json={"item_ids": [10]}).json()
    assert len(everything["rows"][0]["forecast"]) == HORIZONS

    bad = client.post("/predict/demand", json={"item_ids": [10], "max_horizon": 0})
    assert bad.status_code == 422
    assert "max_horizon: Input should be greater than or equal to 1" in bad.json()["detail"]


def test_predictions_without_models_are_503(home: Paths, tmp_path: Path) -> None:
    empty = Paths(tmp_path.resolve())
    write_exports(empty)
    features.apply(empty)
    with TestClient(create_app(ServeConfig(empty))) as bare:
        demand = bare.post("/predict/demand", json={"item_ids": [10]})
        assert demand.status_code == 503
        assert "no champion demand forecasts" in demand.json()["detail"]
        assert bare.get("/health").json()["demand_model"] is None
        # Features still serve (nothing materialized yet: every id unknown, no error).
        rows = bare.post("/features", json={"entity": "user", "ids": [1]}).json()["rows"]
        assert rows == [{"id": 1, "found": False, "features": dict.fromkeys(USER_FEATURES)}]


def test_propensity_without_a_champion_is_503(client: TestClient) -> None:
    response = client.post("/predict/propensity", json={"user_ids": [1, 2]})
    assert response.status_code == 503
    assert "propensity model" in response.json()["detail"]
    bad = client.post("/predict/propensity", json={"user_ids": ["x"]})
    assert bad.status_code == 422
    assert "user_ids.0: Input should be a valid integer" in bad.json()["detail"]


def test_features_over_redis_equal_sqlite(client: TestClient, home: Paths) -> None:
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        server.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    project = f"basketcast_serve_{uuid.uuid4().hex[:10]}"
    os.environ["BASKETCAST_FEAST_PROJECT"] = project
    try:
        features.apply(home, online="redis")
        assert features.materialize(home, end=END, online="redis") == 5
        with TestClient(create_app(ServeConfig(home, online="redis"))) as on_redis:
            assert on_redis.get("/health").json()["online_store"] == "redis"
            for body in (
                {"entity": "user", "ids": [1, 2, 3, 424242]},
                {"entity": "item", "ids": [10, 20, 99], "feature_service": "demand_v1"},
            ):
                got = on_redis.post("/features", json=body).json()
                want = client.post("/features", json=body).json()
                assert got == want
    finally:
        os.environ.pop("BASKETCAST_FEAST_PROJECT", None)
        keys = list(server.scan_iter(match=f"*{project}"))
        if keys:
            server.delete(*keys)
        server.close()


def _train_propensity_run(paths: Paths) -> str:
    """A small XGBoost propensity run on point-in-time propensity_v1 features, registered."""
    from ml_jobs.users.baselines import XGBoostPropensity, XGBoostPropensityParams

    stamps = [DAYS[d] + timedelta(hours=12) for d in range(4)]
    entity_df = pd.DataFrame(
        {
            "user_id": [u for u in (1, 2, 3) for _ in stamps],
            "event_timestamp": [t for _ in (1, 2, 3) for t in stamps],
        }
    )
    train = features.historical_features(paths, entity_df, "propensity_v1")
    purchased = (train["views_7d"].fillna(0) % 2 == 1).to_numpy(dtype=float)
    spend = train["spend_90d"].fillna(0).to_numpy() / 10
    params = XGBoostPropensityParams(n_estimators=5, min_child_weight=0.0, nthread=1)
    model = XGBoostPropensity(params, USER_FEATURES_V1).fit(train, purchased, spend)
    run_id = "xgboost_propensity-20250305T000000-serve1"
    artifact = paths.artifacts / run_id
    model.save(artifact)
    record = registry.RunRecord(
        run_id, "xgboost_propensity", "xgboost", "1", feature_service="propensity_v1"
    )
    with warehouse.connect(paths.warehouse) as con:
        warehouse.ensure_prediction_schema(con)
        registry.start_run(con, record)
        registry.finish_run(con, run_id, "succeeded", artifact_uri=str(artifact))
    return run_id


def test_propensity_scores_the_registered_model_on_online_features(home: Paths) -> None:
    pytest.importorskip("ml_jobs.users.serving", reason="the user models are not installed")
    from ml_jobs.users.serving import load_propensity_scorer

    _train_propensity_run(home)
    with TestClient(create_app(ServeConfig(home, refresh_s=0))) as fresh:
        assert fresh.get("/health").json()["propensity_model"] == "propensity_v1"
        response = fresh.post("/predict/propensity", json={"user_ids": [2, 424242, 1]})
        assert response.status_code == 200
        body = response.json()
    assert body["feature_service"] == "propensity_v1"
    rows = body["rows"]
    assert [(r["user_id"], r["found"]) for r in rows] == [(2, True), (424242, False), (1, True)]
    assert rows[1]["p_purchase"] is None and rows[1]["expected_spend"] is None
    # The same numbers as scoring the SDK's online features with the module directly.
    scorer = load_propensity_scorer(home)
    direct = scorer.score(features.online_features(home, "user", [2, 1], "propensity_v1"))
    for row, (_, want) in zip([rows[0], rows[2]], direct.iterrows(), strict=True):
        assert row["p_purchase"] == pytest.approx(want["p_purchase"], rel=1e-6)
        assert row["expected_spend"] == pytest.approx(want["expected_spend"], rel=1e-6)
        assert 0.0 <= row["p_purchase"] <= 1.0


# --- guards: API key, body size, identifiers --------------------------------------------------

API_KEY = "k" * 8 + "-serving-test-key"


@pytest.fixture(scope="module")
def keyed(home: Paths) -> Iterator[TestClient]:
    config = ServeConfig(home, api_key=API_KEY, max_body_bytes=2048)
    with TestClient(create_app(config)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing API key"),
        ({"x-api-key": "wrong-key-of-some-length"}, 401, "wrong API key"),
        ({"authorization": "Bearer nope"}, 401, "wrong API key"),
        ({"authorization": f"Basic {API_KEY}"}, 401, "missing API key"),
        ({"x-api-key": API_KEY}, 200, None),
        ({"authorization": f"Bearer {API_KEY}"}, 200, None),
    ],
)
def test_scoring_endpoints_require_the_api_key(
    keyed: TestClient, headers: dict, status: int, message: str | None
) -> None:
    for path, body in (
        ("/features", {"entity": "user", "ids": [1]}),
        ("/predict/demand", {"item_ids": [10]}),
    ):
        response = keyed.post(path, json=body, headers=headers)
        assert response.status_code == status, path
        if message:
            assert message in response.json()["detail"]
            assert response.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/health").status_code == 200  # probes need no key


def test_a_malformed_body_without_the_key_is_refused_as_unauthorised(keyed: TestClient) -> None:
    for body in ({"entity": "user"}, "{not json"):
        sent = {"json": body} if isinstance(body, dict) else {"content": body}
        response = keyed.post("/features", headers={"content-type": "application/json"}, **sent)
        assert response.status_code == 401
        assert "missing API key" in response.json()["detail"]
        keyed_response = keyed.post(
            "/features",
            headers={"content-type": "application/json", "x-api-key": API_KEY},
            **sent,
        )
        assert keyed_response.status_code == 422  # with the key: what to fix in the body


def test_api_key_is_taken_from_the_environment_and_must_be_long(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml_jobs.cli import build_parser

    with pytest.raises(ValueError, match="at least 16 characters"):
        ServeConfig(home, api_key="short")
    monkeypatch.setenv("BASKETCAST_API_KEY", API_KEY)
    from ml_jobs.serving.guard import api_key_from_env

    assert api_key_from_env() == API_KEY
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.api_key_file is None  # loopback by default
    assert ServeConfig(home).host == "127.0.0.1"


def test_oversize_and_malformed_bodies_are_4xx_with_a_message(keyed: TestClient) -> None:
    auth = {"x-api-key": API_KEY}
    big = {"entity": "user", "ids": list(range(1, 600))}  # > 2048 bytes of JSON
    response = keyed.post("/features", json=big, headers=auth)
    assert response.status_code == 413
    assert "larger than 2048 bytes" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        yield b'{"entity": "user", "ids": ['
        for _ in range(1000):
            yield b"1, "
        yield b"1]}"

    json_type = {**auth, "content-type": "application/json"}
    streamed = keyed.post("/features", content=chunks(), headers=json_type)
    assert streamed.status_code == 413
    assert "larger than 2048 bytes" in streamed.json()["detail"]

    nested = keyed.post("/features", content=b"[" * 1000 + b"]" * 1000, headers=json_type)
    assert 400 <= nested.status_code < 500
    assert nested.json()["detail"]
    for content in (b"\xff\xfe not utf-8", b'{"entity": "user", "ids": [NaN]}', b""):
        odd = keyed.post("/features", content=content, headers=json_type)
        assert odd.status_code in (400, 422), content
        assert odd.json()["detail"], content


def test_identifiers_from_config_are_checked_before_sql(home: Paths) -> None:
    from ml_jobs.serving.bulk_write import read_newest
    from ml_jobs.serving.layout import ViewLayout, view_layout

    store = features.feature_store(home)
    view = store.list_feature_views()[0]
    assert view_layout(store.project, view).sqlite_table == f"{store.project}_{view.name}"
    for project in ('basketcast"; DROP TABLE x; --', "1st", "a b", "x" * 200, ""):
        with pytest.raises(ValueError, match="Feast project name .* is not a plain identifier"):
            view_layout(project, view)
    with pytest.raises(ValueError, match="feature name in view 'v'"):
        ViewLayout("p", "v", "user_id", ('views_7d", 1); --',), ("Float64",))
    layout = view_layout(store.project, view)
    with pytest.raises(ValueError, match="timestamp field .* is not a plain identifier"):
        next(read_newest(layout, "x.parquet", END, END, timestamp_field='ts" OR 1=1 --'))
