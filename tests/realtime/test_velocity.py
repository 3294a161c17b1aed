"""Velocity semantics on hand-built sequences, against the real Redis (one Lua call each)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from realtime.features import VELOCITY_FEATURES
from realtime.keys import GraphRisk, Keys
from realtime.velocity import VelocityStore
from tests.support.realtime import T0, key_txn

DAY = 86400


class Runner:
    """Runs the decide script for hand-built transactions; returns the velocity features."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.keys = url, Keys(prefix)
        self.loop = asyncio.new_event_loop()
        self.store = VelocityStore(Redis.from_url(url), self.keys)
        self.n = 0

    def __call__(self, ts: float, *, amount: float = 10.0, **ids: str | None) -> dict[str, float]:
        self.n += 1
        base: dict[str, Any] = {
            "user_id": "u1",
            "card_id": None,
            "device_id": None,
            "ip": None,
            "merchant_id": None,
        }
        base.update(ids)
        t = key_txn(txn_id=f"v{self.n}", ts=ts, amount=amount, **base)
        state = self.loop.run_until_complete(self.store.decide(t))
        assert state.status == "ok" and state.velocity is not None
        self.last_risks = state.risks
        return dict(zip(VELOCITY_FEATURES, state.velocity, strict=True))

    def close(self) -> None:
        self.loop.run_until_complete(self.store.client.aclose())
        self.loop.close()


@pytest.fixture
def run(redis_url: str, redis_prefix: str) -> Iterator[Runner]:
    r = Runner(redis_url, redis_prefix)
    yield r
    r.close()


def test_first_transaction_sees_empty_state_and_missing_entities_are_nan(run: Runner) -> None:
    f = run(T0, user_id="u1", device_id="d1", card_id="c1")
    assert f["user_n_1h"] == 0 and f["user_amt_7d"] == 0 and f["card_n_7d"] == 0
    assert f["user_devices_7d"] == 0 and f["device_users_7d"] == 0
    assert f["user_new_device"] == 1 and f["user_new_card"] == 1
    assert math.isnan(f["user_secs_since_last"])
    for name in ("ip_n_1h", "ip_amt_24h", "ip_users_7d", "user_new_ip", "merchant_n_1h"):
        assert math.isnan(f[name]), name


def test_current_transaction_excluded_and_same_minute_counts(run: Runner) -> None:
    run(T0 + 5, amount=10.5)
    f = run(T0 + 6, amount=20.25)
    assert f["user_n_1h"] == 1 and f["user_amt_1h"] == 10.5
    f = run(T0 + 7, amount=1.0)
    assert f["user_n_1h"] == 2 and f["user_amt_1h"] == pytest.approx(30.75)
    assert f["user_secs_since_last"] == pytest.approx(1.0)


def test_one_hour_window_is_60_minute_buckets(run: Runner) -> None:
    run(T0 + 10, user_id="a")  # minute bucket B
    assert run(T0 + 59 * 60 + 59, user_id="a")["user_n_1h"] == 1  # bucket B+59: inside
    run(T0 + 10, user_id="b")
    f = run(T0 + 60 * 60, user_id="b")  # bucket B+60: outside 1 h, inside 24 h
    assert f["user_n_1h"] == 0 and f["user_n_24h"] == 1


def test_day_and_week_windows_are_hour_buckets(run: Runner) -> None:
    run(T0 + 100, user_id="a", card_id="c", amount=7.0)  # hour bucket H
    f = run(T0 + 23 * 3600 + 3599, user_id="a", card_id="c")  # H+23
    assert f["user_n_24h"] == 1 and f["card_amt_24h"] == 7.0
    run(T0 + 100, user_id="b", card_id="c2")
    f = run(T0 + 24 * 3600, user_id="b", card_id="c2")  # H+24: out of 24 h, in 7 d
    assert f["user_n_24h"] == 0 and f["user_n_7d"] == 1 and f["card_amt_24h"] == 0
    assert f["card_n_7d"] == 1
    run(T0, user_id="c")
    assert run(T0 + 167 * 3600, user_id="c")["user_n_7d"] == 1  # H+167: inside
    run(T0, user_id="d")
    assert run(T0 + 168 * 3600, user_id="d")["user_n_7d"] == 0  # H+168: outside


def test_distinct_counts_and_their_seven_day_edge(run: Runner) -> None:
    run(T0, user_id="u", device_id="d1", ip="1.1.1.1")
    run(T0 + 1, user_id="u", device_id="d2", ip="1.1.1.1")
    f = run(T0 + 2, user_id="u", device_id="d1", ip="2.2.2.2")
    assert f["user_devices_7d"] == 2 and f["user_ips_7d"] == 1 and f["user_new_device"] == 0
    assert f["user_new_ip"] == 1
    run(T0 + 3, user_id="v", device_id="d1")
    f = run(T0 + 4, user_id="w", device_id="d1")
    assert f["device_users_7d"] == 2  # u and v; w is the current one
    # last seen exactly 7 days before counts; one second earlier does not
    run(T0, user_id="x", card_id="k1")
    assert run(T0 + 7 * DAY, user_id="x", card_id="k2")["user_cards_7d"] == 1
    run(T0, user_id="y", card_id="k1")
    assert run(T0 + 7 * DAY + 1, user_id="y", card_id="k2")["user_cards_7d"] == 0


def test_first_use_means_not_within_30_days(run: Runner) -> None:
    run(T0, user_id="u", device_id="d")
    assert run(T0 + 30 * DAY, user_id="u", device_id="d")["user_new_device"] == 0
    run(T0, user_id="v", device_id="d")
    assert run(T0 + 30 * DAY + 1, user_id="v", device_id="d")["user_new_device"] == 1


def test_memory_is_bounded(run: Runner, redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    for i in range(1005):
        run(T0 + i, user_id="u", device_id=f"d{i}")
    seen = keys.velocity("user", "u", "seen:device")
    assert redis_client.zcard(seen) == 1000
    assert redis_client.zscore(seen, "d0") is None  # the oldest were dropped
    assert 0 < redis_client.ttl(seen) <= 31 * DAY
    # entries older than 30 days are dropped on the next write
    run(T0 + 31 * DAY, user_id="u", device_id="fresh")
    assert redis_client.zcard(seen) == 1
    # minute buckets older than an hour are deleted; hash keys carry TTLs
    for minute in range(180):
        run(T0 + minute * 60, user_id="m", merchant_id="shop")
    minutes = keys.velocity("merchant", "shop", "min")
    assert redis_client.hlen(minutes) <= 61
    assert 0 < redis_client.ttl(minutes) <= 7200
    assert redis_client.hlen(keys.velocity("merchant", "shop", "hour")) <= 24
    assert 0 < redis_client.ttl(keys.velocity("user", "m", "hour")) <= 8 * DAY


def test_risk_comes_back_from_the_same_call(
    run: Runner, redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    risk = GraphRisk(
        score=0.8, ring_id="r1", ring_size=5, ring_fraud_rate=0.4, model_version="g1", updated_at=1
    )
    redis_client.set(keys.risk("device", "d9"), risk.dumps())
    redis_client.set(keys.risk("ip", "9.9.9.9"), b"not json")
    run(T0, user_id="u", device_id="d9", ip="9.9.9.9")
    assert run.last_risks == [None, None, risk, None, None]  # malformed means unknown


def test_idempotency_states(redis_url: str, redis_prefix: str) -> None:
    async def go() -> None:
        store = VelocityStore(Redis.from_url(redis_url), Keys(redis_prefix))
        t = key_txn("same", T0, 5.0, "u", None, None, None, None)
        assert (await store.decide(t)).status == "ok"
        assert (await store.decide(t)).status == "pending"
        assert await store.record(txn_id="same", user_id="u", stored=b'{"x":1}', record=b"{}")
        again = await store.decide(t)
        assert again.status == "dup" and again.stored == b'{"x":1}'
        assert not await store.record(txn_id="same", user_id="u", stored=b'{"x":2}', record=b"{}")
        await store.client.aclose()

    asyncio.run(go())
