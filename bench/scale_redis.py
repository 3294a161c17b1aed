"""Redis bytes per decision at steady state, per key family, and per active entity.

Decisions go through `realtime.service.DecisionEngine` in this process (no HTTP: the bytes do
not depend on the transport) against a fresh embedded Redis, over a fixed population (USERS
users, each with its own card, one of DEVICES devices, IPS ips and MERCHANTS merchants). Event
times are SPACING_S apart, so the warm-up spans 31 days: every window (the longest is the
user's 30 days) is full and each further decision drops as much old state as it adds. A
consumer group reads and acknowledges every record as the workers would, and the stream is
trimmed behind the acknowledgements as the workers' trim does once the graph's replay point has
passed (its retention floor is reported as a stock: entries at 1,000 decisions/s). Memory is
taken after WARMUP decisions and again after as many more: the difference per decision is the
marginal cost at steady state, split by key family (MEMORY USAGE over the family's keys). The
decision records are bounded by the idempotency window (they are the marginal cost within
it); velocity grows with active entities, not with decisions.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
from rich.console import Console

console = Console(stderr=True)
USERS = 5_000
DEVICES = 4_000
IPS = 3_000
MERCHANTS = 500
WARMUP = 20_000
MEASURED = 20_000
SPACING_S = 31 * 86_400 / WARMUP
FAMILIES = ("decision:", "stream:decisions", "vel:", "risk:", "stats:", "meta:")


def _family_bytes(client: redis.Redis, prefix: str) -> dict[str, int]:
    out = dict.fromkeys(FAMILIES, 0)
    out["other"] = 0
    keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
    for i in range(0, len(keys), 2000):
        chunk = keys[i : i + 2000]
        pipe = client.pipeline(transaction=False)
        for k in chunk:
            pipe.memory_usage(k, samples=0)
        for k, size in zip(chunk, pipe.execute(), strict=True):
            name = k.decode()[len(prefix) :]
            fam = next((f for f in FAMILIES if name.startswith(f)), "other")
            out[fam] += int(size or 0)
    out["keys"] = len(keys)
    return out


def _transactions(n: int, *, start: int, seed: int) -> list[Any]:
    from realtime.schemas import Transaction

    rng = np.random.default_rng(seed + start)
    users = rng.integers(USERS, size=n)
    first = time.time() - (WARMUP + MEASURED) * SPACING_S - 3600
    out = []
    for i in range(n):
        u = int(users[i])
        out.append(
            Transaction(
                txn_id=f"scale-{start + i}",
                ts=datetime.fromtimestamp(first + (start + i) * SPACING_S, tz=UTC),
                user_id=f"u{u}",
                card_id=f"tok{u}",
                device_id=f"d{u % DEVICES}",
                ip=f"10.0.{(u % IPS) // 250}.{u % 250}",
                merchant_id=f"m{int(rng.integers(MERCHANTS))}",
                amount=float(rng.uniform(1, 500)),
                currency="EUR",
            )
        )
    return out


async def _decide_all(
    engine: Any, txns: list[Any], client: redis.Redis, stream: str, *, trim: bool
) -> None:
    sem = asyncio.Semaphore(64)

    async def one(t: Any) -> None:
        async with sem:
            await engine.decide(t)

    for i in range(0, len(txns), 2000):
        await asyncio.gather(*(one(t) for t in txns[i : i + 2000]))
        last = _consume(client, stream)
        if trim and last is not None:
            client.xtrim(stream, minid=last, approximate=False)


def _consume(client: redis.Redis, stream: str) -> Any:
    """Read and acknowledge everything, as the workers' consumer group does; the last id."""
    from realtime.keys import DECISION_GROUP

    last = None
    while True:
        got: Any = client.xreadgroup(DECISION_GROUP, "bench", {stream: ">"}, count=5000)
        ids = [mid for _, msgs in got or [] for mid, _ in msgs]
        if not ids:
            return last
        client.xack(stream, DECISION_GROUP, *ids)
        last = ids[-1]


def run_redis(*, seed: int) -> dict[str, float | int | str]:
    from fraudring.logs import configure_logging
    from fraudring.runtime import EmbeddedServer
    from fraudring.settings import load_settings
    from realtime.keys import Keys
    from realtime.service import DecisionEngine

    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-scale-redis-") as tmp:
        server = EmbeddedServer(Path(tmp) / "redis", graph=False).start()
        try:
            prefix = "scale:"
            settings = load_settings(
                redis_url=server.url,
                redis_prefix=prefix,
                data_dir=Path(tmp) / "data",
                env="test",
                redis_timeout_ms=1000,
                api_keys={},
                # one stream: the per-decision bytes do not depend on how it is partitioned
                stream_partitions=1,
            )
            keys = Keys(prefix)
            client = redis.Redis.from_url(server.url)
            loop = asyncio.new_event_loop()
            engine = DecisionEngine(settings)
            loop.run_until_complete(engine.ensure_group())
            stream = keys.decisions_stream
            console.print(f"redis: {WARMUP:,} decisions over {USERS:,} users (warm-up) ...")
            loop.run_until_complete(
                _decide_all(
                    engine, _transactions(WARMUP, start=0, seed=seed), client, stream, trim=False
                )
            )
            # one stream entry's size, then the stream trimmed behind the acknowledgements as the
            # workers' trim does once the graph's replay point has passed (retention floor aside)
            entry_bytes = _family_bytes(client, prefix)["stream:decisions"] / max(
                1, int(client.xlen(stream))
            )
            last = _consume(client, stream)
            info: Any = client.xinfo_stream(stream)
            client.xtrim(stream, minid=last or info["last-generated-id"], approximate=False)
            used0 = int(client.info("memory")["used_memory"])
            fam0 = _family_bytes(client, prefix)
            console.print(f"redis: {MEASURED:,} more ...")
            t0 = time.perf_counter()
            loop.run_until_complete(
                _decide_all(
                    engine,
                    _transactions(MEASURED, start=WARMUP, seed=seed),
                    client,
                    stream,
                    trim=True,
                )
            )
            rate = MEASURED / (time.perf_counter() - t0)
            used1 = int(client.info("memory")["used_memory"])
            fam1 = _family_bytes(client, prefix)
            loop.run_until_complete(engine.close())
            loop.close()
            client.close()
        finally:
            server.stop()
    entities = USERS * 2 + DEVICES + IPS + MERCHANTS  # users, their cards, devices, ips, merchants
    out: dict[str, float | int | str] = {
        "redis_data": (
            f"{WARMUP:,} + {MEASURED:,} decisions (engine, no HTTP) over {USERS:,} users, "
            f"{entities:,} entities, {SPACING_S:.0f} s of event time apart, seed {seed}; "
            "stream read, acknowledged and trimmed behind the acknowledgements as workers do"
        ),
        "redis_bytes_per_decision": (used1 - used0) / MEASURED,
        "redis_decisions_per_s_in_process": rate,
    }
    for fam in FAMILIES:
        out[f"redis_bytes_per_decision[{fam.rstrip(':')}]"] = (fam1[fam] - fam0[fam]) / MEASURED
    # the trimmed stream is a stock, not a marginal cost: entries of the retention floor (and
    # of whatever the graph has not yet replayed) at a given rate
    retention = settings.stream_retention_s
    out["redis_stream_entry_bytes"] = entry_bytes
    out[f"redis_stream_stock_mb_at_1000_per_s[{retention:g}s floor]"] = (
        1000 * retention * entry_bytes / 1e6
    )
    out["redis_idempotency_window_h"] = settings.idempotency_ttl_s / 3600
    out["redis_bytes_per_active_entity[vel+risk+stats]"] = (
        fam1["vel:"] + fam1["risk:"] + fam1["stats:"]
    ) / entities
    return out
