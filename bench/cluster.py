"""Decisions through Redis Cluster against one Redis: latency of the engine, same load.

`realtime.service.DecisionEngine` in this process (no HTTP: the API adds the same for both),
with a 300-tree model (`bench.decisions._train_model`) and the default rules, decides the same
seeded transactions (20k users, as `bench decisions`) CONCURRENCY at a time, first with every
key on one embedded Redis, then with the per-entity state on a 3-node embedded Redis Cluster
(`fraudring.embedded_cluster`, loopback) and the claim, record and stream on the one Redis.
Per-decision latency is the time around `engine.decide`; p50 / p99 over MEASURED decisions
after WARMUP, and the CPU time per decision of this process (the engine) and of the Redis
servers, which does not depend on the machine's other load. The Redis budget is 250 ms (as
`bench stream`: the load generator, Redis and the cluster share the cores), so a scheduling
hiccup shows in p99 rather than as a degraded, Redis-less (and faster) decision; degraded
decisions are counted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

console = Console(stderr=True)
USERS = 20_000
WARMUP = 2_000
MEASURED = 10_000
CONCURRENCY = 4


def _transactions(n: int, *, seed: int, tag: str) -> list[Any]:
    from realtime.schemas import Transaction

    rng = np.random.default_rng(seed)
    now = time.time() - 60
    out = []
    for i in range(n):
        u = int(rng.integers(1, USERS + 1))
        out.append(
            Transaction(
                txn_id=f"{tag}-{i}",
                ts=datetime.fromtimestamp(now + i * 0.001, tz=UTC),
                user_id=f"u{u}",
                card_id=f"tok{u * 2 + int(rng.integers(2))}",
                device_id=f"d{u % 15000}",
                ip=f"10.{u % 200}.{int(rng.integers(4))}.{u % 250}",
                merchant_id=f"m{int(rng.integers(1, 501))}",
                amount=float(rng.uniform(1, 800)),
                currency="EUR",
            )
        )
    return out


async def _drive(engine: Any, txns: list[Any]) -> tuple[list[float], int, float]:
    lat: list[float] = []
    degraded = 0
    queue = iter(txns)

    async def worker() -> None:
        nonlocal degraded
        for t in queue:
            t0 = time.perf_counter()
            out = await engine.decide(t)
            lat.append((time.perf_counter() - t0) * 1000)
            degraded += int(out.degraded)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return lat, degraded, len(txns) / (time.perf_counter() - t0)


def _measure(settings: Any, *, seed: int, tag: str, pids: list[int]) -> dict[str, float]:
    from bench.graph import _cpu_seconds
    from realtime.service import DecisionEngine

    async def go() -> dict[str, float]:
        engine = DecisionEngine(settings)
        await engine.ensure_group()
        await _drive(engine, _transactions(WARMUP, seed=seed, tag=f"{tag}w"))
        txns = _transactions(MEASURED, seed=seed + 1, tag=f"{tag}m")
        cpu0, srv0 = time.process_time(), sum(_cpu_seconds(p) for p in pids)
        lat, degraded, rate = await _drive(engine, txns)
        cpu, srv = time.process_time() - cpu0, sum(_cpu_seconds(p) for p in pids) - srv0
        await engine.close()
        return {
            # CPU per decision does not depend on what else runs on the machine; latency does
            f"{tag}_engine_cpu_ms": cpu / MEASURED * 1000,
            f"{tag}_redis_cpu_ms": srv / MEASURED * 1000,
            f"{tag}_p50_ms": float(np.percentile(lat, 50)),
            f"{tag}_p99_ms": float(np.percentile(lat, 99)),
            f"{tag}_decisions_per_s": rate,
            f"{tag}_degraded": degraded,
        }

    try:
        import uvloop

        return uvloop.run(go())
    except ImportError:  # pragma: no cover - uvloop is a dependency of the API
        return asyncio.run(go())


def run(*, transactions: int | None = None, seed: int = 7) -> dict[str, float | int | str]:
    from bench.decisions import _train_model
    from fraudring.embedded_cluster import embedded_cluster
    from fraudring.logs import configure_logging
    from fraudring.runtime import EmbeddedServer
    from fraudring.settings import load_settings

    configure_logging(level="WARNING")
    out: dict[str, float | int | str] = {
        "data": (
            f"{MEASURED:,} decisions after {WARMUP:,}, {USERS:,} users, {CONCURRENCY} in flight, "
            f"engine in process (no HTTP), 300-tree model, seed {seed}"
        )
    }
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-cluster-") as tmp:
        root = Path(tmp)
        _train_model(root, seed=seed)
        server = EmbeddedServer(root / "redis", graph=False).start()
        try:
            with embedded_cluster(root / "cluster", nodes=3) as cluster:
                common = {"data_dir": root, "env": "test", "api_keys": {}, "redis_timeout_ms": 250}
                one = load_settings(redis_url=server.url, redis_prefix="one:", **common)
                console.print("decisions on one Redis ...")
                pid = server._proc.pid if server._proc is not None else 0
                out.update(_measure(one, seed=seed, tag="one_redis", pids=[pid]))
                split = load_settings(
                    redis_url=server.url,
                    redis_cluster_url=cluster.url,
                    redis_prefix="split:",
                    **common,
                )
                console.print("decisions through the 3-node cluster ...")
                pids = [pid, *(p.pid for p in cluster._procs)]
                out.update(_measure(split, seed=seed, tag="cluster", pids=pids))
        finally:
            server.stop()
    return out
