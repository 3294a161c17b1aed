"""Hostile requests against the API (issue: faults and hostile input): every one answered in
the API's error shape with the right status, nothing echoed, nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from fraudring.settings import Settings, hash_api_key
from realtime.keys import Keys
from tests.support.realtime import txn

KEYS = {"score": "k-score", "investigate": "k-inv", "admin": "k-admin"}
SCORE = {"X-API-Key": KEYS["score"]}
PAN = "4111111111111111"


@pytest.fixture
def client_for(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**over: Any) -> TestClient:
        keys = {hash_api_key(k): scope for scope, k in KEYS.items()}
        c = TestClient(
            create_app(make_settings(api_keys=keys, **over)), raise_server_exceptions=False
        )
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    # A generous Redis budget: a busy test machine must not turn these into degraded decisions
    # (which have no idempotency record to compare with).
    return client_for(redis_timeout_ms=2000)


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.text
    body: dict[str, Any] = r.json()
    assert set(body) <= {"error", "message", "detail"} and body["error"] and body["message"]
    return body


def _stored(client: TestClient, redis_url: str, *needles: str) -> list[str]:
    """Every key name and value under the test's prefix that holds one of the needles."""
    prefix = client.app.state.settings.redis_prefix  # type: ignore[attr-defined]
    r = redis.Redis.from_url(redis_url)
    hits = []
    for key in r.scan_iter(match=f"{prefix}*"):
        value = r.xrange(key) if r.type(key) == b"stream" else r.dump(key)
        blob = key + b" " + str(value).encode()
        hits += [n for n in needles if n.encode() in blob]
    return hits


# -- 1. ids: one rule ------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["txn_id", "user_id", "card_id", "device_id", "merchant_id"])
@pytest.mark.parametrize("value", ["u-1 ", " u-1", "u-1\u00a0", "\u3000u", "a\u200bb"])
def test_ids_with_outer_whitespace_or_invisible_characters_are_422(
    client: TestClient, field: str, value: str
) -> None:
    r = client.post("/v1/decisions", json=txn(1, **{field: value}), headers=SCORE)
    body = _error(r, 422)
    [err] = body["detail"]["errors"]
    assert err["field"] == field and ("whitespace" in err["reason"] or "printable" in err["reason"])
    r = client.post(
        "/v1/decisions/batch",
        json={"transactions": [txn(2), txn(3, **{field: value})]},
        headers=SCORE,
    )
    assert _error(r, 422)["detail"]["errors"][0]["field"] == f"transactions.1.{field}"


# -- 5. idempotency compares the body --------------------------------------------------------
def test_another_body_under_a_used_txn_id_is_409_single_and_batch(
    client: TestClient, redis_url: str
) -> None:
    first = client.post("/v1/decisions", json=txn(5), headers=SCORE)
    assert first.status_code == 200
    other = txn(5, user_id="u-other", card_id="tok_other", amount=999999.0 / 2, currency="USD")
    body = _error(client.post("/v1/decisions", json=other, headers=SCORE), 409)
    assert body["error"] == "idempotency_conflict" and "'t5'" in body["message"]
    body = _error(
        client.post("/v1/decisions/batch", json={"transactions": [txn(6), other]}, headers=SCORE),
        409,
    )
    assert "'t5'" in body["message"]
    body = _error(
        client.post(
            "/v1/decisions/batch",
            json={"transactions": [txn(7), txn(7, amount=3.0)]},
            headers=SCORE,
        ),
        409,
    )
    assert "'t7'" in body["message"]
    again = client.post("/v1/decisions", json=txn(5), headers=SCORE)
    assert again.status_code == 200 and again.headers["idempotent-replay"] == "true"
    assert again.json()["decision"] == first.json()["decision"]
    key = Keys(client.app.state.settings.redis_prefix).decision("t5")  # type: ignore[attr-defined]
    assert first.json()["decision"] == "approve"  # a review keeps its whole answer (the queue)
    assert len(redis.Redis.from_url(redis_url).get(key) or b"") < 100


# -- 6. no 500s ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "1999-12-31T23:59:59Z"]
)
def test_times_out_of_range_are_422_single_and_batch(client: TestClient, ts: str) -> None:
    r = client.post("/v1/decisions", json=txn(1, ts=ts), headers=SCORE)
    assert _error(r, 422)["detail"]["errors"][0]["field"] == "ts"
    r = client.post("/v1/decisions/batch", json={"transactions": [txn(2, ts=ts)]}, headers=SCORE)
    assert _error(r, 422)["detail"]["errors"][0]["field"] == "transactions.0.ts"


def test_a_rules_file_with_a_huge_integer_is_422_and_one_cli_line(
    client_for: Callable[..., TestClient], tmp_path: Path
) -> None:
    import subprocess
    import sys

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: ok\n    when: amount > 5000\n    action: review\n")
    c = client_for(rules_path=rules)
    rules.write_text(
        f"rules:\n  - name: big\n    when: amount > {'9' * 400}\n    action: decline\n"
    )
    admin = {"X-API-Key": KEYS["admin"]}
    body = _error(c.post("/v1/rules/reload", headers=admin), 422)
    assert "too large" in body["message"]
    run = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "rules", "check", str(rules)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "too large" in run.stderr and len(run.stderr.strip().splitlines()) == 1


# -- 7. card numbers -------------------------------------------------------------------------
CARDS = [
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    f"tok_{PAN}",
    f"{PAN}=2512",
    "４１１１１１１１１１１１１１１１",
    "٤١١١١١١١١١١١١١١١",
]


@pytest.mark.parametrize("field", ["txn_id", "user_id", "card_id", "device_id", "merchant_id"])
@pytest.mark.parametrize("value", CARDS)
def test_card_numbers_in_any_id_are_refused_never_echoed_or_stored(
    client: TestClient, redis_url: str, field: str, value: str
) -> None:
    r = client.post("/v1/decisions", json=txn(1, **{field: value}), headers=SCORE)
    body = _error(r, 422)
    assert body["detail"]["errors"][0]["field"] == field
    assert "card number" in body["detail"]["errors"][0]["reason"]
    for needle in (PAN, value, "1111"):
        assert needle not in r.text
    assert not _stored(client, redis_url, PAN, value)


def test_unknown_field_names_are_not_echoed(client: TestClient) -> None:
    r = client.post("/v1/decisions", json={**txn(1), PAN: "x"}, headers=SCORE)
    body = _error(r, 422)
    assert PAN not in r.text and body["detail"]["errors"][0]["field"] == "body"
    r = client.post(
        "/v1/decisions/batch", json={"transactions": [{**txn(1), PAN: 1}]}, headers=SCORE
    )
    assert PAN not in r.text and _error(r, 422)["detail"]["errors"][0]["field"] == "transactions.0"


# -- 9. bounds and shapes --------------------------------------------------------------------
def test_bodies_over_the_limit_are_413_before_parsing(
    client_for: Callable[..., TestClient],
) -> None:
    c = client_for(max_body_bytes=4096)
    big = orjson.dumps({"transactions": [txn(i) for i in range(200)]})
    assert len(big) > 4096
    body = _error(c.post("/v1/decisions/batch", content=big, headers=SCORE), 413)
    assert "4096" in body["message"]
    body = _error(c.post("/v1/decisions", content=big, headers=SCORE), 413)


@pytest.mark.parametrize("amount", [True, False])
def test_booleans_are_not_amounts(client: TestClient, amount: bool) -> None:
    r = client.post("/v1/decisions", json=txn(1, amount=amount), headers=SCORE)
    assert _error(r, 422)["detail"]["errors"][0]["field"] == "amount"


def test_ids_ending_in_a_slash_are_not_redirected(client: TestClient) -> None:
    inv = {"X-API-Key": KEYS["investigate"]}
    r = client.get("/v1/rings/r-1/", headers=inv, follow_redirects=False)
    assert r.status_code != 307
    _error(r, 404)


def test_an_unexpected_error_answers_in_the_error_shape(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]

    async def broken(_: object) -> object:
        raise RuntimeError("a bug")

    engine.decide = broken
    r = client.post("/v1/decisions", json=txn(1), headers=SCORE)
    body = _error(r, 500)
    assert body["error"] == "internal_error" and "a bug" not in r.text


def test_readyz_shows_no_internal_address_without_a_key(
    client_for: Callable[..., TestClient],
) -> None:
    from fraudring.runtime import free_port

    port = str(free_port())
    c = client_for(redis_url=f"redis://127.0.0.1:{port}/0")  # nothing listens there
    anonymous = c.get("/readyz")
    assert anonymous.status_code == 503 and port not in anonymous.text
    assert anonymous.json()["checks"]["redis"]["ok"] is False
    keyed = c.get("/readyz", headers={"X-API-Key": KEYS["investigate"]})
    assert keyed.status_code == 503 and "unreachable" in keyed.json()["checks"]["redis"]["detail"]
