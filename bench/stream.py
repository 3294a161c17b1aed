"""Stream a generated world through the API and the workers; measure backlog, freshness, loss.

Everything runs on this machine: a fresh embedded Redis + FalkorDB, the API (`fraudring serve`,
one uvicorn process), one Celery worker (threads pool) and this process as the load generator,
sending `/v1/decisions/batch` requests of 50 transactions paced to the target rate, in the
world's time order. A first phase (`workers_only_*`) pushes the same world's decision records
straight onto the stream at the target rate, with a fresh graph and key prefix, so the workers'
capacity shows apart from the API's. Figures:

- `sustained_txn_per_s`: decisions answered per second over the run; `backlog_growth_per_s`:
  growth of (pending + undelivered) on the decision stream (mean of the second half of the run
  minus mean of the first, per second); `drain_after_stream_s`: time to empty it afterwards.
- `freshness_p50_s` / `freshness_p95_s`: seconds from each decision (`decided_at`) to the
  refresh of its neighbourhood's ring risk in Redis, over the last 20,000 decisions.
- `lost` / `double_counted`: after the drain, transactions answered by the API but missing
  from the graph, and transactions the graph counts more than once (sum of users' counts).
- `ring_seen_by_next_decision`: a new account makes one transaction on a device of a known
  fraud ring (labels applied as of the end of the stream), then one with nothing of the ring;
  1 if the second decision's explanation already carries the ring (through the user's risk).
  A device, not an IP: graph.rings ties a user to an IP only once the user is based there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from bench import BenchError
from bench.stream_support import check_graph, ring_end_to_end, wait, world_requests
from fraudring.children import stop_group
from fraudring.runtime import celery_client, free_port, services
from fraudring.settings import hash_api_key, load_settings
from realtime import ops
from realtime.keys import LABEL_GROUP, Keys

RATE = 1000.0  # target transactions per second
BATCH = 50
DEFAULT_TRANSACTIONS = 60_000  # one minute at the target rate
ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _process(
    cmd: list[str], *, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        stop_group(proc, grace_s=20)


async def _feed(
    base: str, key: str, txns: list[dict[str, Any]], *, client: redis.Redis, keys: Keys
) -> dict[str, Any]:
    """Send batches paced to RATE; sample the stream backlog once a second."""
    samples: list[tuple[float, int]] = []
    answered = 0
    errors = 0
    degraded = 0
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            lag = ops.decision_lag(client, keys)
            samples.append((time.monotonic(), lag["pending"] + lag["undelivered"]))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    batches = [txns[i : i + BATCH] for i in range(0, len(txns), BATCH)]
    sem = asyncio.Semaphore(4)
    t0 = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:

        async def send(i: int, batch: list[dict[str, Any]]) -> None:
            nonlocal answered, errors, degraded
            async with sem:
                r = await http.post("/v1/decisions/batch", json={"transactions": batch})
            if r.status_code == 200:
                answered += len(batch)
                degraded += sum(1 for d in r.json()["decisions"] if d.get("degraded"))
            else:
                errors += len(batch)
                if errors <= BATCH:
                    print(f"batch {i}: HTTP {r.status_code} {r.text[:200]}", flush=True)

        tasks = []
        for i, batch in enumerate(batches):
            due = t0 + i * BATCH / RATE
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, batch)))
            if i % 200 == 0:
                print(
                    f"  sent {i * BATCH:,} / {len(txns):,} ({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    stop.set()
    await sampler
    slope = _growth(samples, t0=t0, elapsed=elapsed)
    return {
        "answered": answered,
        "errors": errors,
        "degraded": degraded,
        "elapsed": elapsed,
        "backlog_growth": slope,
        "backlog_max": max((b for _, b in samples), default=0),
    }


def _growth(samples: list[tuple[float, int]], *, t0: float, elapsed: float) -> float:
    """Backlog growth per second: mean of the second half minus mean of the first, over half
    the run. Batches of up to 5,000 make the backlog a saw tooth; means of halves see through
    it where a fitted slope would follow the last tooth."""
    first = [b for t, b in samples if t < t0 + elapsed / 2]
    second = [b for t, b in samples if t >= t0 + elapsed / 2]
    if len(first) < 2 or len(second) < 2:
        return float("nan")
    return float((np.mean(second) - np.mean(first)) / (elapsed / 2))


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    from world.simulate import generate

    n = transactions or DEFAULT_TRANSACTIONS
    tmp = Path(tempfile.mkdtemp(prefix="fraudring-stream-"))
    try:
        print(f"generating a world of {n:,} transactions (seed {seed}) ...", flush=True)
        generate(out=tmp / "world", transactions=n, seed=seed, progress=False)
        txns = world_requests(tmp / "world")
        settings = load_settings(data_dir=tmp / "data", env="test", api_keys={})
        with services(settings) as ep:
            direct = _direct(tmp=tmp, txns=txns, redis_url=ep.redis_url, graph_url=ep.graph_url)
            full = _run(
                tmp=tmp, txns=txns, redis_url=ep.redis_url, graph_url=ep.graph_url, seed=seed
            )
        return {**full, **direct}
    finally:
        logs = Path("var/bench")
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("api.log", "worker.log", "worker-direct.log"):
            if (tmp / name).exists():
                shutil.copyfile(tmp / name, logs / f"stream-{name}")
        print(f"process logs kept in {logs}/stream-*.log", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)


def push_paced(
    client: redis.Redis, keys: Keys, txns: list[dict[str, Any]], *, rate: float, batch: int = BATCH
) -> tuple[float, float, list[tuple[float, int]]]:
    """Decision records straight onto the stream at `rate` a second, `batch` per write; (start,
    elapsed, backlog samples once a second)."""
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    next_sample = t0
    for i in range(0, len(txns), batch):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pipe = client.pipeline(transaction=False)
        now = time.time()
        for t in txns[i : i + batch]:
            rec = {"txn": t, "decision": "approve", "score": 0.05, "decided_at": now,
                   "model_version": None, "degraded": False}  # fmt: skip
            pipe.xadd(keys.decisions_stream_for(t["user_id"]), {"d": json.dumps(rec).encode()})
        pipe.execute()
        if time.monotonic() >= next_sample:
            samples.append((time.monotonic(), _backlog(client, keys)))
            next_sample += 1.0
    return t0, time.monotonic() - t0, samples


def _push(client: redis.Redis, keys: Keys, txns: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Decision records straight onto the stream at RATE; (elapsed, backlog slope, max)."""
    t0, elapsed, samples = push_paced(client, keys, txns, rate=RATE)
    slope = _growth(samples, t0=t0, elapsed=elapsed)
    return elapsed, slope, max((b for _, b in samples), default=0)


def _direct(
    *, tmp: Path, txns: list[dict[str, Any]], redis_url: str, graph_url: str
) -> dict[str, Any]:
    """The workers alone: records pushed onto the stream at the target rate, no API."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    env_vals = {
        "FRAUDRING_ENV": "test",
        "FRAUDRING_DATA_DIR": str(tmp / "data"),
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": graph_url,
        "FRAUDRING_GRAPH_NAME": f"bench_{uuid.uuid4().hex[:8]}",
        "FRAUDRING_REDIS_PREFIX": prefix,
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")},
        **env_vals,
        "FRAUDRING_API_KEYS": "{}",
    }
    settings = load_settings(
        **{k.removeprefix("FRAUDRING_").lower(): v for k, v in env_vals.items()}, api_keys={}
    )
    keys = Keys(prefix, partitions=settings.stream_partitions)
    client = redis.Redis.from_url(redis_url)
    try:
        with _process(_worker_cmd(), env=env, log=tmp / "worker-direct.log") as worker:
            time.sleep(3)  # worker start-up
            if worker.poll() is not None:
                raise BenchError(f"the worker exited; see {tmp / 'worker-direct.log'}")
            print(f"workers only: pushing {len(txns):,} records at {RATE:.0f}/s ...", flush=True)
            elapsed, slope, peak = _push(client, keys, txns)
            drain_s = wait(lambda: _backlog(client, keys) == 0, timeout=600, what="the drain")
            fresh = ops.freshness_stats(client, keys)
        lost, double = check_graph(settings, txns)
    finally:
        ops.delete_prefix(client, prefix)
        client.close()
    return {
        "workers_only_sustained_txn_per_s": round(len(txns) / (elapsed + drain_s), 1),
        "workers_only_backlog_growth_per_s": round(slope, 2),
        "workers_only_backlog_max": peak,
        "workers_only_drain_after_stream_s": round(drain_s, 2),
        "workers_only_freshness_p50_s": round(fresh["p50_s"], 3),
        "workers_only_freshness_p95_s": round(fresh["p95_s"], 3),
        "workers_only_lost": lost,
        "workers_only_double_counted": double,
    }


def _worker_cmd() -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "ingest,score,train",
        "--pool", "threads", "--concurrency", "4", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def _run(
    *, tmp: Path, txns: list[dict[str, Any]], redis_url: str, graph_url: str, seed: int
) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    key = "bench-" + secrets.token_hex(8)
    env_vals = {
        "FRAUDRING_ENV": "test",
        "FRAUDRING_DATA_DIR": str(tmp / "data"),
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": graph_url,
        "FRAUDRING_GRAPH_NAME": f"bench_{uuid.uuid4().hex[:8]}",
        "FRAUDRING_REDIS_PREFIX": prefix,
        "FRAUDRING_API_KEYS": json.dumps({hash_api_key(key): "score,investigate"}),
        # API, worker, FalkorDB and this load generator share the CPUs: the default 25 ms Redis
        # budget would turn scheduling hiccups into degraded (spooled) decisions.
        "FRAUDRING_REDIS_TIMEOUT_MS": "250",
        # The stream keeps the whole run (60 s of retention would trim its first entries
        # before the benchmark counts them).
        "FRAUDRING_STREAM_RETENTION_S": "3600",
    }
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")}, **env_vals}
    settings = load_settings(
        **{
            k.removeprefix("FRAUDRING_").lower(): v
            for k, v in env_vals.items()
            if k != "FRAUDRING_API_KEYS"
        },
        api_keys={},
    )
    keys = Keys(prefix, partitions=settings.stream_partitions)
    client = redis.Redis.from_url(redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_cmd = [
        sys.executable,
        "-c",
        "from fraudring.cli import main; main()",
        "serve",
        "--port",
        str(port),
    ]
    worker_cmd = _worker_cmd()
    try:
        with (
            _process(api_cmd, env=env, log=tmp / "api.log"),
            _process(worker_cmd, env=env, log=tmp / "worker.log"),
        ):
            wait(lambda: _ready(base), timeout=60, what="the API")
            print(
                f"streaming {len(txns):,} transactions at {RATE:.0f}/s through {base} ...",
                flush=True,
            )
            fed = asyncio.run(_feed(base, key, txns, client=client, keys=keys))
            print(
                f"  answered {fed['answered']:,} in {fed['elapsed']:.1f} s; draining ...",
                flush=True,
            )
            spool_s = wait(  # decisions spooled while Redis was slow are replayed by the API
                lambda: ops.decision_lag(client, keys)["length"] >= fed["answered"], timeout=300,
                what="spooled decisions to reach the stream",
            )  # fmt: skip
            drain_s = wait(
                lambda: _backlog(client, keys) == 0,
                timeout=600, what="the workers to drain the stream",
            )  # fmt: skip
            fresh = ops.freshness_stats(client, keys)
            last_ts = max(datetime.fromisoformat(t["ts"]).timestamp() for t in txns)
            n_labels = _publish_labels(tmp / "world", client=client, keys=keys, until=last_ts)
            celery_client(redis_url, prefix).send_task(
                "fraudring.labels.kick", kwargs={"force": True}, queue="score"
            )
            wait(lambda: _labels_done(client, keys, n_labels), timeout=120, what="the labels")
            extra: list[dict[str, Any]] = []
            e2e = ring_end_to_end(
                base=base, key=key, settings=settings, last_ts=last_ts, client=client, keys=keys,
                sent=extra,
            )  # fmt: skip
            wait(
                lambda: _backlog(client, keys) == 0,
                timeout=60, what="the last decisions",
            )  # fmt: skip
        lost, double = check_graph(settings, txns + extra)
    finally:
        ops.delete_prefix(client, prefix)
        client.close()
    return {
        "transactions": len(txns),
        "target_txn_per_s": RATE,
        "sustained_txn_per_s": round(fed["answered"] / fed["elapsed"], 1),
        "api_errors": fed["errors"],
        "api_degraded": fed["degraded"],
        "spool_replay_s": round(spool_s, 2),
        "backlog_growth_per_s": round(fed["backlog_growth"], 2),
        "backlog_max": fed["backlog_max"],
        "drain_after_stream_s": round(drain_s, 2),
        "freshness_p50_s": round(fresh["p50_s"], 3),
        "freshness_p95_s": round(fresh["p95_s"], 3),
        "lost": lost,
        "double_counted": double,
        "labels_applied": n_labels,
        **e2e,
        "cpus": os.cpu_count() or 0,
        "path": "API (1 uvicorn process) -> stream -> 1 Celery worker (4 threads), same machine",
    }


def _backlog(client: redis.Redis, keys: Keys) -> int:
    lag = ops.decision_lag(client, keys)
    return lag["pending"] + lag["undelivered"]


def _labels_done(client: redis.Redis, keys: Keys, n: int) -> bool:
    lag = ops.stream_lag(client, keys.labels_stream, LABEL_GROUP)
    return lag["length"] >= n and lag["pending"] + lag["undelivered"] == 0


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _publish_labels(world_dir: Path, *, client: redis.Redis, keys: Keys, until: float) -> int:
    """The labels that had arrived by the end of the stream (label delay respected)."""
    from realtime.labels import LabelRecord, publish_labels
    from world.io import read_world

    lab = read_world(world_dir).labels.to_pandas()
    lab = lab[lab.label_ts.map(lambda t: t.timestamp()) <= until]
    recs = [
        LabelRecord(
            kind="txn",
            id=r.txn_id,
            label="fraud" if r.label == 1 else "legitimate",
            by="bench",
            at=r.label_ts.timestamp(),
        )
        for r in lab.itertuples(index=False)
    ]
    publish_labels(client, keys, recs)
    return len(recs)
