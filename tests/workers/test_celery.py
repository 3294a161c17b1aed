"""A real Celery worker (subprocess, threads pool) on the real Redis broker and embedded FalkorDB."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis

from fraudring.settings import Settings
from graph.service import open_store
from realtime import ops
from realtime.keys import Keys
from tests.support.realtime import stream_entries
from tests.support.workers import (
    ROOT,
    T0,
    celery_worker,
    decision,
    graph_overrides,
    kill,
    small_world,
    wait_for,
    worker_env,
    xadd_all,
)
from workers.ingest import parse_decision, to_record
from workers.streams import Message

pytestmark = pytest.mark.slow


def _drained(client: redis.Redis, keys: Keys, total: int) -> Callable[[], bool]:
    def check() -> bool:
        lag = ops.decision_lag(client, keys)
        return lag["length"] == total and lag["pending"] == 0 and lag["undelivered"] == 0

    return check


@pytest.mark.parametrize("backend", ["falkordb", "neo4j"])
def test_killed_worker_loses_nothing_and_double_counts_nothing(
    backend: str,
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    s = make_settings(**graph_overrides(backend, request))
    keys = Keys(s.redis_prefix)
    world = small_world(users=40, txns=3000, seed=3)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env(s, FRAUDRING_INGEST_BATCH="25"), log) as workers:
        xadd_all(redis_client, keys.decisions_stream, world[:2000])

        def acked() -> int:
            lag = ops.decision_lag(redis_client, keys)
            return lag["length"] - lag["pending"] - lag["undelivered"]

        wait_for(lambda: acked() >= 300, timeout=60, what="the first batches", log=log)
        kill(workers.procs[0])
        lag = ops.decision_lag(redis_client, keys)
        assert lag["pending"] + lag["undelivered"] > 0, "killed too late to prove anything"
        xadd_all(redis_client, keys.decisions_stream, world[2000:] + world[:100])  # 100 repeats
        workers.start()
        wait_for(
            _drained(redis_client, keys, 3100), timeout=90, what="the drain after restart", log=log
        )

    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        records = [to_record(parse_decision(Message("x", orjson.dumps(r)))) for r in world]
        assert store.ingest(records).ingested == 0, "a transaction was lost"
        per_user = Counter(r["txn"]["user_id"] for r in world)
        for user, n in per_user.items():
            hood = store.neighbourhood("user", user, hops=1, max_nodes=50, follow=["card"])
            counted = sum(e.n for e in hood.edges if e.kind == "card")
            assert counted == n, f"{user}: graph counts {counted} transactions, stream has {n}"


def test_bad_messages_go_to_deadletter_and_the_pipeline_continues(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = make_settings()
    keys = Keys(s.redis_prefix)
    good = small_world(users=10, txns=60)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env(s), log):
        xadd_all(redis_client, keys.decisions_stream, good[:30])
        redis_client.xadd(keys.decisions_stream, {"d": b'{"txn": {"txn_id": '})
        redis_client.xadd(keys.decisions_stream, {"d": orjson.dumps({**good[0], "color": "red"})})
        redis_client.xadd(keys.decisions_stream, {"other": b"1"})
        xadd_all(redis_client, keys.decisions_stream, good[30:])
        wait_for(_drained(redis_client, keys, 63), timeout=60, what="the drain", log=log)
    reasons = sorted(e["reason"] for e in ops.deadletters(redis_client, keys))
    assert len(reasons) == 3
    assert reasons[0] == "ValueError: entry has no field 'd'"
    assert reasons[1] == "color: Extra inputs are not permitted"
    assert reasons[2].startswith("malformed JSON")
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        records = [to_record(parse_decision(Message("x", orjson.dumps(r)))) for r in good]
        assert store.ingest(records).ingested == 0  # all 60 good ones, before and after, are in
    # the CLI shows them
    out = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "deadletter", "list"],
        cwd=ROOT, env={**worker_env(s), "COLUMNS": "250"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Extra inputs" in out.stdout and "malformed" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "status"],
        cwd=ROOT, env={**worker_env(s), "COLUMNS": "250"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert re.search(r"decision stream length\s+│\s+63 │", out.stdout), out.stdout
    assert re.search(r"lag: not yet delivered\s+│\s+0 │", out.stdout), out.stdout
    assert "freshness p50 / p95 s (last 60)" in out.stdout
    # retry: the message goes back onto the stream, and (still bad) back to the dead letters
    entry = next(e for e in ops.deadletters(redis_client, keys) if e["reason"].startswith("color"))
    out = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "deadletter", "retry", entry["id"]],
        cwd=ROOT, env=worker_env(s), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert re.search(r"as [0-9]+-[0-9]+$", out.stdout.strip()) and "b'" not in out.stdout
    assert redis_client.xlen(keys.decisions_stream) == 64
    assert entry["id"] not in {e["id"] for e in ops.deadletters(redis_client, keys)}
    out = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "deadletter", "retry", "1-0"],
        cwd=ROOT, env=worker_env(s), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "not found" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "deadletter", "retry", "bogus"],
        cwd=ROOT, env=worker_env(s), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "not an entry id" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_failing_task_retries_with_backoff_then_deadletters(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = make_settings()
    keys = Keys(s.redis_prefix)
    env = worker_env(
        s,
        FRAUDRING_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{_closed_port()}/hook",
        FRAUDRING_ALERT_WEBHOOK_SECRET="a-secret-shared-with-the-receiver",
    )
    log = tmp_path / "worker.log"
    with celery_worker(env, log):
        rec = decision("t-decl", user="u1", ts=T0, card="c1", outcome="decline", score=0.97)
        xadd_all(redis_client, keys.decisions_stream, [rec])
        t0 = time.time()
        wait_for(
            lambda: redis_client.xlen(keys.deadletter) > 0, timeout=60, what="dead letter", log=log
        )
        elapsed = time.time() - t0
    (entry,) = ops.deadletters(redis_client, keys)
    assert entry["kind"] == "task" and entry["task"] == "fraudring.alerts.webhook"
    assert entry["attempts"] == 3  # first try + FRAUDRING_TASK_MAX_RETRIES=2
    assert "ConnectError" in entry["error"]
    assert elapsed >= 1 + 2  # backoff 1 s then 2 s
    alerts = stream_entries(redis_client, keys.alerts_stream)
    alert = orjson.loads(alerts[0][1][b"d"])
    assert alert["kind"] == "high_risk_decision" and alert["evidence"]["txn_id"] == "t-decl"
    assert entry["args"] == [alerts[0][0].decode()]


def test_a_chargeback_reaches_the_merchants_served_statistics(
    make_settings: Callable[..., Settings], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Decisions stream into the graph's ledger; a chargeback imported through the CLI is applied
    by the labels task, which queues a statistics refresh; the merchant's cached entry then
    counts the fraud (the entry the decision's Lua call reads)."""
    from realtime.keys import MERCHANT_STATS_SIZE, EntityStats

    s = make_settings()
    keys = Keys(s.redis_prefix)
    world = [
        decision(f"s{i:03d}", user=f"u{i % 5}", ts=T0 + 60.0 * i, card=f"c{i % 5}", merchant="m1")
        for i in range(20)
    ]
    log = tmp_path / "worker.log"
    with celery_worker(worker_env(s, FRAUDRING_STATS_LABEL_GAP_S="0"), log):
        xadd_all(redis_client, keys.decisions_stream, world)
        wait_for(_drained(redis_client, keys, 20), timeout=60, what="the drain", log=log)
        csv = tmp_path / "labels.csv"
        csv.write_text(f"kind,id,label,at\ntxn,s003,fraud,{T0 + 600.0}\ntxn,ghost,fraud,\n")
        out = subprocess.run(
            [sys.executable, "-m", "fraudring.cli", "labels", "import", str(csv)],
            cwd=ROOT, env=worker_env(s), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "1 label(s) queued" in out.stdout
        assert f"{csv}:3: txn 'ghost' is not in the graph" in out.stderr

        def counted() -> bool:
            raw = redis_client.get(keys.stats("merchant", "m1"))
            entry = EntityStats.loads(raw, size=MERCHANT_STATS_SIZE) if raw else None
            return entry is not None and entry.values[2] > 0  # the 28-day rate

        wait_for(counted, timeout=60, what="the refreshed merchant statistics", log=log)
    raw = redis_client.get(keys.stats("merchant", "m1"))
    assert raw is not None
    entry = EntityStats.loads(raw, size=MERCHANT_STATS_SIZE)
    assert entry is not None
    rate_28d, first, cpp = entry.values[2], entry.values[3], entry.values[5]
    # the only settled transaction is the charged-back one: the other 19 are younger than the
    # label delay and unlabelled, so their outcome is not known yet
    assert rate_28d == 1.0 and first == T0 + 180.0 and cpp == 1.0
    assert redis_client.get(keys.stats("user", "u3")) is not None
    assert not ops.deadletters(redis_client, keys)  # the unknown id was never queued
