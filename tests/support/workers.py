"""Helpers for the worker tests: decision records, a small ringed world, a real Celery worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_780_000_000.0  # event time of the small worlds (mid-2026)


def decision(
    txn_id: str,
    *,
    user: str,
    ts: float,
    card: str | None = None,
    device: str | None = None,
    ip: str | None = None,
    merchant: str | None = None,
    amount: float = 25.0,
    decided_at: float | None = None,
    outcome: str = "approve",
    score: float | None = 0.1,
    payee: str | None = None,
) -> dict[str, Any]:
    """A decision record exactly as the stream contract describes it."""
    transfer = {"payee_user_id": payee} if payee else {}
    return {
        "txn": {
            "txn_id": txn_id,
            "ts": datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z"),
            "user_id": user,
            "card_id": card,
            "device_id": device,
            "ip": ip,
            "merchant_id": merchant,
            "amount": amount,
            "currency": "EUR",
        }
        | transfer,
        "decision": outcome,
        "score": score,
        "decided_at": decided_at if decided_at is not None else time.time(),
        "model_version": None,
        "degraded": False,
    }


def small_world(
    *, users: int = 40, txns: int = 600, ring_size: int = 6, seed: int = 1
) -> list[dict[str, Any]]:
    """Users with their own card and IP; every `ring_size` of the first half share a device
    (more than a household of 4, so graph.rings calls them suspicious)."""
    rng = random.Random(seed)
    out = []
    for i in range(txns):
        u = rng.randrange(users)
        ringed = u < users // 2
        out.append(
            decision(
                f"t{i:06d}",
                user=f"u{u}",
                ts=T0 + i,
                card=f"c{u}",
                device=f"ring-dev{u // ring_size}" if ringed else f"d{u}",
                ip=f"10.0.{u}.1",
                merchant=f"m{i}",  # a merchant per transaction: no repeat customers, no links
                amount=round(rng.uniform(5, 200), 2),
            )
        )
    return out


def xadd_all(client: redis.Redis, stream: str, records: list[dict[str, Any]]) -> None:
    pipe = client.pipeline(transaction=False)
    for rec in records:
        pipe.xadd(stream, {"d": orjson.dumps(rec)})
    pipe.execute()


def graph_overrides(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings overrides for a test's graph store ("falkordb": none, the embedded server;
    "neo4j": the session's Neo4j server, emptied)."""
    if backend == "falkordb":
        return {}
    env: dict[str, str] = request.getfixturevalue("neo4j_clean")
    return {
        "graph_url": env["NEO4J_URI"],
        "graph_user": env["NEO4J_USER"],
        "graph_password": env["NEO4J_PASSWORD"],
    }


def worker_env(settings: Any, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRAUDRING_", "REDIS_URL", "GRAPH_URL"))
    }
    env.update(
        {
            "FRAUDRING_ENV": "test",
            "FRAUDRING_API_KEYS": "{}",
            "FRAUDRING_REDIS_URL": settings.redis_url,
            "FRAUDRING_GRAPH_URL": settings.graph_url,
            "FRAUDRING_GRAPH_NAME": settings.graph_name,
            "FRAUDRING_GRAPH_USER": settings.graph_user,
            "FRAUDRING_GRAPH_PASSWORD": settings.graph_password.get_secret_value(),
            "FRAUDRING_REDIS_PREFIX": settings.redis_prefix,
            "FRAUDRING_DATA_DIR": str(settings.data_dir),
            "FRAUDRING_INGEST_CLAIM_IDLE_MS": "1500",
            "FRAUDRING_INGEST_LEASE_S": "3",
            "FRAUDRING_TASK_MAX_RETRIES": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Workers:
    """Real worker processes (threads pool) started by `celery_worker`; `start` adds one."""

    def __init__(self, env: dict[str, str], log: Path, queues: str) -> None:
        self.env, self.log, self.queues = env, log, queues
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        handle = self.log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", self.queues,
             "--pool", "threads", "--concurrency", "4", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"test-{len(self.procs)}-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc


@contextmanager
def celery_worker(
    env: dict[str, str], log: Path, *, queues: str = "ingest,score,train"
) -> Iterator[Workers]:
    """Start a real worker; every worker started through the handle is killed at the end."""
    workers = Workers(env, log, queues)
    workers.start()
    try:
        yield workers
    finally:
        for proc in workers.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_for(
    cond: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")
