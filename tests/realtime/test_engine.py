"""The decision engine against real Redis: idempotency, model, explanations, degraded modes, spool.

Degraded modes use a redis-server of the test's own (never the shared one), stopped or paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis

from fraudring.registry import ModelRegistry
from fraudring.settings import Settings
from realtime.idempotency import NOTE_REPLAY, IdempotencyConflict
from realtime.keys import DECISION_GROUP, GraphRisk, Keys
from realtime.recovery import SKIP_AFTER_TIMEOUTS
from realtime.schemas import Transaction
from realtime.service import NOTE_DEGRADED, NOTE_NO_MODEL, DecisionEngine
from tests.support.realtime import OwnRedis, decision_records, own_redis, tiny_model, txn

R = TypeVar("R")


class Harness:
    """An engine on its own event loop, driven synchronously from the test."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = DecisionEngine(settings)
        self.run(self.engine.upkeep())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self.loop.run_until_complete(coro)

    def decide(self, i: int | str = 1, **over: Any) -> tuple[dict[str, Any], bool]:
        t = Transaction.model_validate(txn(i, **over))
        out = self.run(self.engine.decide(t))
        return orjson.loads(out.body), out.replayed

    def close(self) -> None:
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture
def harness(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**over: Any) -> Harness:
        h = Harness(make_settings(**over))
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_rules_only_without_model_and_idempotent_retry(
    harness: Callable[..., Harness], redis_client: redis.Redis, redis_prefix: str
) -> None:
    h = harness()
    body, replayed = h.decide(1)
    assert body["decision"] == "approve" and body["score"] is None and not replayed
    assert NOTE_NO_MODEL in body["explanation"]["notes"] and not body["degraded"]
    again, replayed = h.decide(1)  # a retry: the remembered decision, without explanation
    kept = ("txn_id", "decision", "score", "review_means", "degraded", "model_version")
    assert replayed and {k: again[k] for k in kept} == {k: body[k] for k in kept}
    assert again["decided_at"] == pytest.approx(body["decided_at"], abs=1e-3)
    assert again["explanation"]["notes"] == [NOTE_REPLAY]
    # the same id with another body (amount, user, card, currency): a conflict naming the id
    for other in ({"amount": 999.0}, {"user_id": "u2"}, {"card_id": "tok_9"}, {"currency": "USD"}):
        with pytest.raises(IdempotencyConflict, match="'t1'"):
            h.decide(1, **other)
    # the same body written otherwise (another zone, field order) is a retry
    _, replayed = h.decide(1, ts="2026-11-25T19:00:00+01:00")
    assert replayed
    # the idempotency record is compact and kept for the retry window (48 h by default)
    key = Keys(redis_prefix).decision("t1")
    assert len(redis_client.get(key) or b"") < 100
    assert 47 * 3600 < redis_client.ttl(key) <= 48 * 3600
    records = decision_records(redis_client, h.engine.keys)
    assert len(records) == 1
    rec = records[0]
    assert rec["txn"]["txn_id"] == "t1" and rec["decision"] == "approve"
    assert set(rec) == {"txn", "decision", "score", "decided_at", "model_version", "degraded"}


def test_model_scores_explains_and_uses_manifest_thresholds(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    version = tiny_model(tmp_path / "data", thresholds={"review": 0.2, "decline": 0.6})
    h = harness()
    assert h.engine.scorer.model is not None and h.engine.scorer.model.version == version
    low, _ = h.decide(1, amount=10.0)
    high, _ = h.decide(2, amount=4000.0, user_id="u2")
    assert low["model_version"] == version and low["decision"] == "approve"
    assert high["decision"] == "decline" and high["score"] > 0.6
    top = high["explanation"]["contributions"]
    assert top[0]["feature"] == "amount" and top[0]["value"] == 4000.0
    assert top[0]["contribution"] > 0 and len(top) == 5


def test_review_meaning_and_ring_context(
    harness: Callable[..., Harness], redis_client: redis.Redis, redis_prefix: str
) -> None:
    h = harness(review_means="step_up")
    keys = Keys(redis_prefix)
    ring = GraphRisk(0.9, "ring-7", 6, 0.5, "g1", time.time())
    redis_client.set(keys.risk("device", "d-bad"), ring.dumps())
    body, _ = h.decide(1, device_id="d-bad")
    assert body["decision"] == "decline"  # known_bad_ring (default rules)
    assert body["explanation"]["ring"] == {
        "ring_id": "ring-7",
        "size": 6,
        "fraud_rate": 0.5,
        "entity": "device",
        "gcn_score": None,
    }
    assert [r["name"] for r in body["explanation"]["rules"]] == ["known_bad_ring"]
    body, _ = h.decide(2, amount=25000.0, user_id="u9", device_id="d9")
    assert body["decision"] == "review" and body["review_means"] == "step_up"


def test_model_with_mismatched_feature_order_is_refused(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    from realtime.features import FEATURE_NAMES

    names = list(FEATURE_NAMES)
    names[0], names[1] = names[1], names[0]
    tiny_model(tmp_path / "data", booster_names=names)
    h = harness()
    assert h.engine.scorer.model is None
    assert "feature order" in (h.engine.scorer.error or "")
    body, _ = h.decide(1)
    assert any("model refused" in n for n in body["explanation"]["notes"])


def test_live_model_hot_reload(harness: Callable[..., Harness], tmp_path: Path) -> None:
    first = tiny_model(tmp_path / "data")
    h = harness()
    assert h.engine.scorer.model is not None and h.engine.scorer.model.version == first
    second = tiny_model(tmp_path / "data", trees=5)
    assert h.engine.scorer.refresh()
    assert h.engine.scorer.model.version == second
    ModelRegistry(tmp_path / "data" / "models").rollback(first)
    h.engine.scorer.refresh()
    assert h.engine.scorer.model.version == first


def test_stopped_worker_loses_nothing(
    harness: Callable[..., Harness], redis_client: redis.Redis, redis_prefix: str
) -> None:
    """No consumer runs while decisions are made; a consumer of group `ingest` later gets all."""
    h = harness()
    for i in range(25):
        h.decide(i, user_id=f"u{i}")
    streams: dict[Any, Any] = {s: ">" for s in h.engine.keys.decision_streams}
    assert len(streams) > 1  # the default partitions, users spread over them
    got: Any = redis_client.xreadgroup(DECISION_GROUP, "late-worker", streams, count=100)
    ids = [orjson.loads(f[b"d"])["txn"]["txn_id"] for _, entries in got for _, f in entries]
    assert sorted(ids) == sorted(f"t{i}" for i in range(25))


# -- degraded modes ------------------------------------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Iterator[OwnRedis]:
    with own_redis(tmp_path / "own-redis") as server:
        yield server


def _wait_redis_retry() -> None:
    time.sleep(0.3)  # the engine skips Redis for 250 ms after a failure


def test_redis_down_degrades_spools_and_replays_once(
    harness: Callable[..., Harness], own: OwnRedis, tmp_path: Path
) -> None:
    tiny_model(tmp_path / "data")
    h = harness(redis_url=own.url)
    h.decide(0, user_id="u0")
    own.stop()
    t0 = time.perf_counter()
    a, _ = h.decide(1, amount=4000.0)
    b, _ = h.decide(2)
    b_retry, replayed = h.decide(2)  # no idempotency store while down: decided again
    assert time.perf_counter() - t0 < 1.0
    for body in (a, b, b_retry):
        assert body["degraded"] and NOTE_DEGRADED in body["explanation"]["notes"]
        assert body["score"] is not None  # the model still scores the request's own features
    assert a["decision"] == "decline" and not replayed
    spool = h.engine.spool
    assert len(spool.path.read_bytes().splitlines()) == 3
    own.start()
    _wait_redis_retry()
    assert h.run(h.engine.replay_spool()) == (2, 1)  # t2 twice: recorded once
    assert h.run(h.engine.replay_spool()) == (0, 0)
    assert not spool.has_entries()
    client = own.client()
    records = decision_records(client, h.engine.keys)
    assert sorted(r["txn"]["txn_id"] for r in records) == ["t0", "t1", "t2"]
    assert [r["degraded"] for r in records] == [False, True, True]
    # replay applied the spooled transactions to velocity, once
    keys = Keys(h.engine.keys.prefix)
    assert int(client.hget(keys.velocity("user", "u1", "min"), _minute_field(1)) or 0) == 2
    day = f"n{int(Transaction.model_validate(txn(1)).epoch // 86400)}"
    assert int(client.hget(keys.velocity("user", "u1", "day"), day) or 0) == 2  # user windows too
    # the retry now gets the decision stored by the replay
    body, replayed = h.decide(2)
    assert replayed and body["txn_id"] == "t2" and body["degraded"]


def _minute_field(i: int) -> str:
    ts = Transaction.model_validate(txn(i)).epoch
    return f"n{int(ts // 60)}"


def test_slow_redis_degrades_within_budget_and_is_not_double_counted(
    harness: Callable[..., Harness], own: OwnRedis
) -> None:
    h = harness(redis_url=own.url, redis_timeout_ms=25)
    client = own.client()
    client.execute_command("CLIENT", "PAUSE", "400", "ALL")
    t0 = time.perf_counter()
    body, _ = h.decide(1)
    elapsed = time.perf_counter() - t0
    assert body["degraded"] and elapsed < 0.2
    time.sleep(0.5)  # the paused script runs now: velocity applied, decision key pending
    _wait_redis_retry()
    assert h.run(h.engine.replay_spool()) == (1, 0)
    keys = h.engine.keys
    assert int(client.hget(keys.velocity("user", "u1", "min"), _minute_field(1)) or 0) == 1
    assert len(decision_records(client, keys)) == 1


def test_one_slow_answer_degrades_one_decision_and_a_hung_redis_is_skipped(
    harness: Callable[..., Harness], own: OwnRedis
) -> None:
    """Before: one timeout made the engine skip Redis for 250 ms, so a Redis busy for 30 ms
    (a worker reading a big batch) degraded every decision of the next quarter second."""
    h = harness(redis_url=own.url, redis_timeout_ms=25)
    client = own.client()
    assert not h.decide(0)[0]["degraded"]
    client.execute_command("CLIENT", "PAUSE", "60", "ALL")
    assert h.decide(1)[0]["degraded"]
    time.sleep(0.1)  # Redis answers again, well within the engine's 250 ms of skipping
    assert not h.decide(2)[0]["degraded"]
    # timeouts in a row: Redis is skipped, a decision no longer waits for its budget
    client.execute_command("CLIENT", "PAUSE", "600", "ALL")
    assert all(h.decide(i)[0]["degraded"] for i in range(3, 3 + SKIP_AFTER_TIMEOUTS))
    t0 = time.perf_counter()
    assert h.decide(9)[0]["degraded"] and time.perf_counter() - t0 < 0.02


def test_spool_replay_skips_what_the_stream_already_has(
    harness: Callable[..., Harness], own: OwnRedis
) -> None:
    """A record that reached Redis although the client saw a timeout is not appended twice."""
    h = harness(redis_url=own.url)
    h.decide(1)
    keys = h.engine.keys
    client = own.client()
    stored = client.get(keys.decision("t1"))
    (record,) = decision_records(client, keys)
    entry = {"stored": stored.decode(), "record": orjson.dumps(record).decode()}  # type: ignore[union-attr]
    h.engine.spool.append(entry)
    h.engine.spool.append(entry)
    assert h.run(h.engine.replay_spool()) == (0, 2)
    assert len(decision_records(client, keys)) == 1


def test_torn_spool_line_is_kept_aside_not_dropped(
    harness: Callable[..., Harness], own: OwnRedis
) -> None:
    h = harness(redis_url=own.url)
    spool = h.engine.spool
    spool.directory.mkdir(parents=True, exist_ok=True)
    spool.path.write_bytes(b'{"stored": "tor')
    assert h.run(h.engine.replay_spool()) == (0, 0)
    assert (spool.directory / "rejected.jsonl").read_bytes().startswith(b'{"stored": "tor')


def test_redis_and_disk_both_failing_refuses_to_approve_unrecorded(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """Before: the approval was answered and existed only as a log line."""
    from fraudring.runtime import free_port
    from realtime.service import DecisionUnrecorded

    tiny_model(tmp_path / "data")
    (tmp_path / "not-a-dir").write_text("x")
    h = harness(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        spool_fallback_dir=tmp_path / "not-a-dir" / "spool",
    )
    h.engine.spool.directory.parent.mkdir(parents=True, exist_ok=True)
    h.engine.spool.directory.write_text("not a directory")  # the spool cannot be written
    with pytest.raises(DecisionUnrecorded):
        h.decide(1)
    body, _ = h.decide(2, amount=4000.0)  # a decline is still the safer answer
    assert body["degraded"] and body["decision"] == "decline"
    ok, detail = h.engine.spool.writable()
    assert not ok and "not writable" in detail
