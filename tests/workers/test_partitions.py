"""The decision stream in partitions: a user's decisions in one, drains in parallel, each user's
transactions applied in order, and a killed worker costs neither a write nor a double count."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis

from fraudring.settings import Settings
from graph.schemas import IngestResult, TxnRecord
from graph.service import open_store
from realtime import ops
from realtime.keys import DECISION_GROUP, Keys
from tests.support.workers import (
    celery_worker,
    kill,
    small_world,
    wait_for,
    worker_env,
    xadd_all,
)
from workers import replay
from workers.ingest import parse_decision, to_record
from workers.ringpass import shared_pass
from workers.scoring import heuristic_scorer
from workers.service import Pipeline, drain_decisions, renew_lease
from workers.streams import Message


def test_a_users_partition_is_stable_and_users_spread() -> None:
    keys = Keys("p:", partitions=4)
    # CRC-32, the same in every process and release (Python's str hash is salted per process)
    assert keys.decisions_stream_for("u1") == "p:stream:decisions:2"
    assert keys.decisions_stream_for("u2") == "p:stream:decisions"
    assert keys.decision_streams == [
        "p:stream:decisions", "p:stream:decisions:1", "p:stream:decisions:2",
        "p:stream:decisions:3",
    ]  # fmt: skip
    spread = Counter(keys.partition_of(f"user-{i}") for i in range(4000))
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 800
    one = Keys("p:")
    assert one.decision_streams == ["p:stream:decisions"] == [one.decisions_stream_for("u1")]


def _publish(client: redis.Redis, keys: Keys, world: list[dict[str, Any]]) -> None:
    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in world:
        by_stream[keys.decisions_stream_for(rec["txn"]["user_id"])].append(rec)
    for stream, records in by_stream.items():
        xadd_all(client, stream, records)


class _Recording:
    """The real graph store, noting the order in which each user's transactions reach it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.order: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def ingest(self, records: Sequence[TxnRecord]) -> IngestResult:
        result: IngestResult = self._store.ingest(records)
        with self._lock:
            for r in records:
                self.order[r.user_id].append(r.ts)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_parallel_drains_keep_each_users_order_and_trim_each_partition(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = make_settings(
        stream_partitions=3, ingest_batch=40, ingest_linger_ms=0, stream_retention_s=0
    )
    keys = Keys(s.redis_prefix, partitions=3)
    world = small_world(users=30, txns=900, seed=4)  # each user's transactions in time order
    _publish(redis_client, keys, world)
    lengths = [int(redis_client.xlen(stream)) for stream in keys.decision_streams]
    assert sum(lengths) == 900 and min(lengths) > 100
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        store.ensure_schema()
        spy = _Recording(store)
        pipe = Pipeline(client=redis_client, store=spy, settings=s, scorer=heuristic_scorer)
        errors: list[BaseException] = []

        def drain(partition: int) -> None:
            try:
                drain_decisions(pipe, consumer=f"c{partition}", partition=partition,
                                max_seconds=120, block_ms=50)  # fmt: skip
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(p,)) for p in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert not errors, errors
        assert sum(len(v) for v in spy.order.values()) == 900
        for user, seen in spy.order.items():
            assert seen == sorted(seen), f"{user}'s transactions reached the graph out of order"
        # each partition has its own replay point, at its own frontier; once the graph's point
        # passed them, the partition is trimmed down to nothing (no retention floor here)
        for p, stream in enumerate(keys.decision_streams):
            frontier = ops.frontiers(redis_client, stream)[DECISION_GROUP]
            assert store.replay_point(stream) == frontier
            redis_client.delete(keys.partition_meta("stream_trimmed", p))  # the trim's throttle
            replay.trim(pipe, graph_point=frontier, partition=p)
            assert redis_client.xlen(stream) == 0


@pytest.mark.slow
def test_two_workers_drain_partitions_and_a_kill_loses_and_doubles_nothing(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = make_settings(stream_partitions=3)
    keys = Keys(s.redis_prefix, partitions=3)
    world = small_world(users=40, txns=3000, seed=6)
    log = tmp_path / "worker.log"
    env = worker_env(s, FRAUDRING_STREAM_PARTITIONS="3", FRAUDRING_INGEST_BATCH="25")
    with celery_worker(env, log) as workers:
        workers.start()  # two worker processes
        _publish(redis_client, keys, world[:2000])

        def acked() -> int:
            lag = ops.decision_lag(redis_client, keys)
            return lag["length"] - lag["pending"] - lag["undelivered"]

        wait_for(lambda: acked() >= 300, timeout=60, what="the first batches", log=log)
        kill(workers.procs[0])
        lag = ops.decision_lag(redis_client, keys)
        assert lag["pending"] + lag["undelivered"] > 0, "killed too late to prove anything"
        _publish(redis_client, keys, world[2000:] + world[:100])  # 100 repeats
        workers.start()

        def drained() -> bool:
            lag = ops.decision_lag(redis_client, keys)
            return lag["length"] == 3100 and lag["pending"] == 0 and lag["undelivered"] == 0

        wait_for(drained, timeout=120, what="the drain after the kill", log=log)
        text = log.read_text()
        for p in range(3):  # every partition was drained, each under its own lease
            assert f"partition={p}" in text

    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        records = [to_record(parse_decision(Message("x", orjson.dumps(r)))) for r in world]
        assert store.ingest(records).ingested == 0, "a transaction was lost"
        per_user = Counter(r["txn"]["user_id"] for r in world)
        for user, n in per_user.items():
            hood = store.neighbourhood("user", user, hops=1, max_nodes=50, follow=["card"])
            counted = sum(e.n for e in hood.edges if e.kind == "card")
            assert counted == n, f"{user}: graph counts {counted} transactions, stream has {n}"


def test_the_ring_pass_is_shared_and_redone_after_a_failed_holder(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = make_settings()
    pipe = SimpleNamespace(settings=s, keys=Keys(s.redis_prefix), client=redis_client)
    # drain B's users wait while A's pass is due: A's pass takes both, B's finds nothing left
    redis_client.sadd(pipe.keys.meta("rings:waiting"), "b1", "b2")
    seen: list[set[str]] = []

    def note(users: set[str]) -> int:
        seen.append(users)
        return 1

    assert shared_pass(pipe, {"a1"}, note, empty=0) == 1
    assert seen == [{"a1", "b1", "b2"}]
    assert shared_pass(pipe, set(), note, empty=0) == 0
    assert len(seen) == 1

    # a holder whose pass fails (or dies) leaves its users in flight: the next pass redoes them
    def fail(users: set[str]) -> int:
        raise RuntimeError("graph went away")

    with pytest.raises(RuntimeError):
        shared_pass(pipe, {"c1"}, fail, empty=0)
    assert shared_pass(pipe, {"d1"}, note, empty=0) == 1
    assert seen[-1] == {"c1", "d1"}
    assert not redis_client.exists(pipe.keys.meta("rings:in_flight"))


def test_a_drain_whose_lease_lapsed_stops_instead_of_failing(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    """Before: a batch that outlasted the drain's lease made the renewal raise, the task failed
    and, its retries spent, no drain of that partition was queued again."""
    lock = redis_client.lock(f"{make_settings().redis_prefix}lease-test", timeout=0.2)
    assert lock.acquire(blocking=False)
    assert renew_lease(lock, "ingest") is True
    time.sleep(0.4)  # the batch outlasted the lease; another drain may hold it now
    redis_client.set(f"{make_settings().redis_prefix}lease-test", b"another drain")
    assert renew_lease(lock, "ingest") is False

    s = make_settings(ingest_batch=10, ingest_linger_ms=0)
    keys = Keys(s.redis_prefix)
    xadd_all(redis_client, keys.decisions_stream, small_world(users=5, txns=50))
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        store.ensure_schema()
        pipe = Pipeline(client=redis_client, store=store, settings=s, scorer=heuristic_scorer)
        stats = drain_decisions(pipe, consumer="c", max_seconds=60, heartbeat=lambda: False)
    assert stats.messages == 10  # one batch, then it handed over
