"""The HTTP API through FastAPI's TestClient: keys and scopes, 422 bodies, models, health, metrics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from fraudring.runtime import free_port
from fraudring.settings import Settings, hash_api_key
from tests.support.realtime import serving, tiny_model, txn

KEYS = {"score": "k-score", "investigate": "k-inv", "admin": "k-admin"}
SCORE = {"X-API-Key": KEYS["score"]}
PAN = "4111 1111 1111 1111"


@pytest.fixture
def client_for(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**over: Any) -> TestClient:
        keys = {hash_api_key(k): scope for scope, k in KEYS.items()}
        c = TestClient(create_app(make_settings(api_keys=keys, **over)))
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for()


def test_decision_needs_a_key_with_the_score_scope(client: TestClient) -> None:
    r = client.post("/v1/decisions", json=txn())
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = client.post("/v1/decisions", json=txn(), headers={"X-API-Key": "nope"})
    assert r.status_code == 401
    r = client.post("/v1/decisions", json=txn(), headers={"X-API-Key": KEYS["investigate"]})
    assert r.status_code == 403 and "score" in r.json()["message"]
    r = client.post("/v1/decisions", json=txn(), headers=SCORE)
    assert r.status_code == 200 and r.json()["decision"] in {"approve", "review", "decline"}
    assert r.headers["server-timing"].startswith("app;dur=")


def test_422_names_field_and_reason_and_never_echoes_a_card_number(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    r = client.post("/v1/decisions", json=txn(card_id=PAN), headers=SCORE)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"]["errors"] == [
        {"field": "card_id", "reason": body["detail"]["errors"][0]["reason"]}
    ]
    assert "raw card number" in body["message"]
    assert "4111" not in r.text and '"input"' not in r.text
    out = capsys.readouterr()
    assert "4111" not in out.out + out.err
    r = client.post("/v1/decisions", json=txn(amount=-1, currency="XYZ"), headers=SCORE)
    assert {e["field"] for e in r.json()["detail"]["errors"]} == {"amount", "currency"}
    r = client.post("/v1/decisions", content=b"{nope", headers=SCORE)
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "body"
    r = client.post(
        "/v1/decisions/batch",
        json={"transactions": [txn(1), txn(2, card_id=PAN)]},
        headers=SCORE,
    )
    assert r.status_code == 422 and "transactions.1.card_id" in r.text and "4111" not in r.text


def test_amount_cap_comes_from_settings(client_for: Callable[..., TestClient]) -> None:
    c = client_for(amount_cap=100.0)
    r = c.post("/v1/decisions", json=txn(amount=150.0), headers=SCORE)
    assert r.status_code == 422 and "below the cap of 100" in r.text


def test_retry_returns_the_stored_decision(client: TestClient) -> None:
    first = client.post("/v1/decisions", json=txn(7), headers=SCORE)
    again = client.post("/v1/decisions", json=txn(7), headers=SCORE)
    kept = ("txn_id", "decision", "score", "degraded", "model_version")

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return {k: a[k] for k in kept} == {k: b[k] for k in kept}

    assert same(again.json(), first.json()) and again.headers["idempotent-replay"] == "true"
    r = client.post(
        "/v1/decisions/batch", json={"transactions": [txn(7), txn(8), txn(8)]}, headers=SCORE
    )
    d = r.json()["decisions"]
    assert r.status_code == 200 and [x["txn_id"] for x in d] == ["t7", "t8", "t8"]
    assert same(d[0], first.json()) and same(d[1], d[2])


def test_models_endpoints(client_for: Callable[..., TestClient], tmp_path: Path) -> None:
    version = tiny_model(tmp_path / "data")
    c = client_for()
    assert c.get("/v1/models", headers=SCORE).status_code == 403
    inv = {"X-API-Key": KEYS["investigate"]}
    listing = c.get("/v1/models", headers=inv).json()
    assert listing["live"] == version and listing["models"][0]["live"] is True
    one = c.get(f"/v1/models/{version}", headers=inv).json()
    assert one["features"][0] == "amount" and one["thresholds"]["review"] == 0.5
    assert one["metrics"]["val_pr_auc"] == 0.9 and one["live"] is True
    assert c.get("/v1/models/19990101T000000Z", headers=inv).status_code == 404


def test_rules_reload_refuses_a_bad_file_and_keeps_the_old(
    client_for: Callable[..., TestClient], tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: a\n    when: amount > 1\n    action: review\n")
    c = client_for(rules_path=path)
    admin = {"X-API-Key": KEYS["admin"]}
    path.write_text("rules:\n  - name: broken\n    when: amount >\n    action: review\n")
    assert c.post("/v1/rules/reload", headers={"X-API-Key": KEYS["investigate"]}).status_code == 403
    r = c.post("/v1/rules/reload", headers=admin)
    assert r.status_code == 422 and "rule 'broken'" in r.json()["message"]
    listing = c.get("/v1/rules", headers={"X-API-Key": KEYS["investigate"]}).json()
    assert [x["name"] for x in listing["rules"]] == ["a"] and "broken" in listing["last_error"]
    body = c.post("/v1/decisions", json=txn(), headers=SCORE).json()
    assert body["decision"] == "review" and body["explanation"]["rules"][0]["name"] == "a"


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert set(r.json()["checks"]) == {"redis", "spool", "replay", "model", "graph"}
    client.post("/v1/decisions", json=txn(), headers=SCORE)
    text = client.get("/metrics").text
    assert 'fraudring_decisions_total{outcome="approve"}' in text
    assert 'fraudring_request_seconds_bucket{le="0.001",route="decision"}' in text
    assert "fraudring_degraded_decisions_total" in text


def test_redis_down_still_answers_200_degraded_and_readyz_503(
    client_for: Callable[..., TestClient],
) -> None:
    c = client_for(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    r = c.post("/v1/decisions", json=txn(), headers=SCORE)
    assert r.status_code == 200 and r.json()["degraded"] is True
    ready = c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"]["ok"] is False


def test_openapi_documents_bodies_with_examples_and_the_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["Transaction"]["examples"][0]["txn_id"] == "t-000001"
    assert "examples" in schemas["Decision"]
    post = spec["paths"]["/v1/decisions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Transaction"
    )
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])


def test_openapi_states_the_error_bodies_and_the_checks(client: TestClient) -> None:
    """Generated clients read the schema: every 4xx is documented in the shape the API really
    sends (never FastAPI's default validation error), and the request checks are stated."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for code, resp in op["responses"].items():
                if code.startswith("4") or (code == "503" and path != "/readyz"):
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, code)
            if op.get("security"):  # the routes behind a key
                assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
    props = schemas["Transaction"]["properties"]
    assert props["amount"]["exclusiveMinimum"] == 0
    assert (
        props["amount"]["exclusiveMaximum"] == cast(FastAPI, client.app).state.settings.amount_cap
    )
    assert props["user_id"]["minLength"] == 1 and props["user_id"]["maxLength"] == 128
    assert "EUR" in props["currency"]["enum"]
    kind = spec["paths"]["/v1/entities/{kind}/{entity_id}/neighbourhood"]["get"]["parameters"][0]
    assert kind["schema"]["enum"] == ["user", "card", "device", "ip", "merchant"]


def test_starlettes_own_errors_have_the_api_error_shape(client: TestClient) -> None:
    """Found by schemathesis: bytes that are not UTF-8 JSON got FastAPI's 400 {"detail": ...}."""
    inv = {"X-API-Key": KEYS["investigate"], "Content-Type": "application/json"}
    r = client.post("/v1/labels", content=b"\xff\x17\xfe", headers=inv)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_input"
    assert r.json()["detail"]["errors"] == [{"field": "body", "reason": "body is not valid JSON"}]
    r = client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.delete("/v1/decisions", headers=SCORE)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("ts", [0, 1_764_000_000, "1764000000", 1.5])
def test_a_number_for_ts_is_refused_not_read_as_1970(client: TestClient, ts: object) -> None:
    r = client.post("/v1/decisions", json=txn(ts=ts), headers=SCORE)
    assert r.status_code == 422
    assert r.json()["detail"]["errors"] == [
        {
            "field": "ts",
            "reason": "must be an ISO 8601 date-time string with a timezone, "
            "e.g. 2026-11-25T18:00:00Z",
        }
    ]


def test_api_and_realtime_never_import_torch() -> None:
    code = """
import importlib, pkgutil, sys
import api, realtime
for pkg in (api, realtime):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
from api.app import create_app
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torch_geometric", "gnn", "workers"})
print(bad)
assert not bad, bad
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fraudring_serve_answers_and_stops(
    redis_url: str, redis_prefix: str, falkor_url: str, tmp_path: Path
) -> None:
    import os

    import httpx

    env = {
        **os.environ,
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": falkor_url,
        "FRAUDRING_REDIS_PREFIX": redis_prefix,
        "FRAUDRING_DATA_DIR": str(tmp_path),
        "FRAUDRING_ENV": "dev",
        "FRAUDRING_API_KEYS": f'{{"{hash_api_key("k")}": "score"}}',
    }
    with serving(env) as base:
        r = httpx.post(f"{base}/v1/decisions", json=txn(), headers={"X-API-Key": "k"})
        assert r.status_code == 200 and r.json()["degraded"] is False
