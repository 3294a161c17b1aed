"""Faults under a bounded load: every decision answered must end in the stream and in the graph
exactly once after recovery, or its loss must be reported.

Each fault runs on a fresh embedded Redis + FalkorDB (append-only files, fsync every second),
the API (`fraudring serve`), one worker (`fraudring worker`) and beat (`fraudring beat`), fed
`DEFAULT_TRANSACTIONS` decisions of a generated world (seed) in batches of 10 paced to `RATE`/s.
When 40% are sent:

- `worker_kill`: kill -9 of the worker (the CLI and its Celery child), restarted 2 s later;
- `falkordb_kill`: kill -9 of the graph server, restarted on its port 1 s later;
- `redis_kill`: kill -9 of Redis, restarted on its port 1 s later (the API degrades meanwhile);
- `full_disk`: the data directory (Redis' append-only file and the API's spool) is a small
  tmpfs, filled to its last block for 3 s (needs root to mount; skipped otherwise).

Per fault: `answered` (HTTP 200), `degraded`, `refused` (503: an approval nobody could record),
`lost_stream` / `dup_stream` (answered decisions missing from / repeated in the decision
stream, which keeps its whole history here), `lost_graph` / `dup_graph` (missing from the graph
/ counted twice, after the workers drained), `recovered` (decisions a restarted Redis was
missing and the API recorded again), `reported` (a replay gap reported by the workers), and
`readyz_503` (polls of /readyz, every 0.5 s, that answered not ready: the fault was visible).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from bench import BenchError
from bench.stream import _process, _ready
from bench.stream_support import check_graph, wait, world_requests
from fraudring.errors import FraudringError
from fraudring.runtime import EmbeddedServer, free_port
from fraudring.settings import hash_api_key, load_settings
from graph.service import open_store
from realtime import ops
from realtime.keys import DECISION_GROUP, Keys

RATE = 300.0
BATCH = 10
DEFAULT_TRANSACTIONS = 3000
FAULTS = ("worker_kill", "falkordb_kill", "redis_kill", "full_disk")


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    from world.simulate import generate

    n = transactions or DEFAULT_TRANSACTIONS
    tmp = Path(tempfile.mkdtemp(prefix="fraudring-faults-"))
    out: dict[str, float | int | str] = {"transactions_per_fault": n, "rate_per_s": RATE}
    try:
        print(f"generating a world of {n:,} transactions (seed {seed}) ...", flush=True)
        generate(out=tmp / "world", transactions=n, seed=seed, progress=False)
        txns = world_requests(tmp / "world")
        for fault in FAULTS:
            print(f"fault {fault} ...", flush=True)
            figures = run_fault(fault, txns=txns, tmp=tmp / fault)
            out.update({f"{fault}_{k}": v for k, v in figures.items()})
            print("  " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
        return out
    finally:
        logs = Path("var/bench")
        logs.mkdir(parents=True, exist_ok=True)
        for log in tmp.glob("*/*.log"):
            shutil.copyfile(log, logs / f"faults-{log.parent.name}-{log.name}")
        print(f"process logs kept in {logs}/faults-*.log", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _small_disk(path: Path, *, size_mb: int = 64) -> Iterator[Path | None]:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: Path) -> None:
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 65536)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 512)
    os.close(fd)


def _kill9(server: EmbeddedServer) -> int:
    assert server._proc is not None
    pid = server._proc.pid
    os.kill(pid, signal.SIGKILL)
    server._proc.wait(timeout=10)
    return pid


def _restart(server: EmbeddedServer) -> None:
    port = server.port
    server.owned = False
    server.start(port=port, timeout_s=120)
    if server.port != port:
        raise BenchError(f"could not restart the server on its port {port}")


def run_fault(fault: str, *, txns: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """One fault on fresh servers and processes under `tmp` (also what the fault tests run)."""
    tmp.mkdir(parents=True)
    with _small_disk(tmp / "disk") as disk:
        if fault == "full_disk" and disk is None:
            return {"skipped": "cannot mount a tmpfs (not root)"}
        base_dir = disk if fault == "full_disk" and disk is not None else tmp
        graph = EmbeddedServer(tmp / "graph").start()
        plain = EmbeddedServer(base_dir / "redis", graph=False).start()
        try:
            return _load(fault, txns=txns, tmp=tmp, data=base_dir, graph=graph, plain=plain)
        finally:
            for server in (plain, graph):
                server.owned = True
                with contextlib.suppress(Exception):
                    server.stop(timeout_s=10)


def _load(
    fault: str,
    *,
    txns: list[dict[str, Any]],
    tmp: Path,
    data: Path,
    graph: EmbeddedServer,
    plain: EmbeddedServer,
) -> dict[str, Any]:
    prefix = f"faults-{uuid.uuid4().hex[:8]}:"
    key = "bench-" + secrets.token_hex(8)
    env_vals = {
        "FRAUDRING_ENV": "test",
        "FRAUDRING_DATA_DIR": str(data / "data"),
        "FRAUDRING_SPOOL_FALLBACK_DIR": str(tmp / "spool-fallback"),
        "FRAUDRING_REDIS_URL": plain.url,
        "FRAUDRING_GRAPH_URL": graph.graph_url,
        "FRAUDRING_GRAPH_NAME": "faults",
        "FRAUDRING_REDIS_PREFIX": prefix,
        "FRAUDRING_REDIS_TIMEOUT_MS": "250",  # the load generator shares the CPUs
        "FRAUDRING_INGEST_CLAIM_IDLE_MS": "2000",
        "FRAUDRING_INGEST_LEASE_S": "5",
        "FRAUDRING_STREAM_RETENTION_S": "3600",  # keep the whole stream to count it
        "FRAUDRING_TASK_MAX_RETRIES": "10",
        "FRAUDRING_TASK_BACKOFF_MAX_S": "4",
    }
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")}, **env_vals}
    env["FRAUDRING_API_KEYS"] = json.dumps({hash_api_key(key): "score"})
    settings = load_settings(
        **{k.removeprefix("FRAUDRING_").lower(): v for k, v in env_vals.items()}, api_keys={}
    )
    keys = Keys(prefix, partitions=settings.stream_partitions)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "fraudring.cli"]
    worker_cmd = [*cli, "worker", "--concurrency", "2"]
    client = redis.Redis.from_url(plain.url, socket_timeout=5)
    workers: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            _process([*cli, "serve", "--port", str(port)], env=env, log=tmp / "api.log")
        )
        workers.append(stack.enter_context(_process(worker_cmd, env=env, log=tmp / "worker.log")))
        # beat's watchdog, as deployed: it re-queues a drain whose task Celery dropped because
        # its retry could not be published while Redis refused writes
        stack.enter_context(_process([*cli, "beat"], env=env, log=tmp / "beat.log"))
        wait(lambda: _ready(base), timeout=60, what="the API")
        time.sleep(3)  # the worker's start

        def inject() -> None:
            if fault == "worker_kill":
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=10)
                time.sleep(2)
                workers.append(
                    stack.enter_context(_process(worker_cmd, env=env, log=tmp / "worker.log"))
                )
            elif fault == "falkordb_kill":
                _kill9(graph)
                time.sleep(1)
                _restart(graph)
            elif fault == "redis_kill":
                _kill9(plain)
                time.sleep(1)
                _restart(plain)
            elif fault == "full_disk":
                _fill(data)
                time.sleep(3)
                (data / "filler").unlink()

        fed = asyncio.run(_feed(base, key, txns, at=int(len(txns) * 0.4), inject=inject))
        answered = fed["answered"]
        with (
            contextlib.suppress(BenchError),
            open_store(graph.graph_url, settings=settings) as store,
        ):
            wait(lambda: _settled(client, keys, store, answered), timeout=180, what="recovery")
        stream = Counter(_stream_txn_ids(client, keys))
        gap = ops.replay_gap(client, keys)
        recovery = ops.read_json(client, keys.meta("redis_recovery")) or {}
    lost_graph, dup_graph = check_graph(settings, [t for t in txns if t["txn_id"] in answered])
    client.close()
    return {
        "answered": len(answered),
        "degraded": fed["degraded"],
        "refused": fed["refused"],
        "errors": fed["errors"],
        "readyz_503": fed["readyz_503"],
        "lost_stream": sum(1 for t in answered if stream[t] == 0),
        "dup_stream": sum(1 for t in answered if stream[t] > 1),
        "lost_graph": lost_graph,
        "dup_graph": dup_graph,
        "recovered": int(recovery.get("missing", 0)),
        "reported": 1 if gap else 0,
    }


def _settled(client: redis.Redis, keys: Keys, store: Any, answered: set[str]) -> bool:
    """Every answered decision is in the stream, acknowledged, and the graph recorded as much
    (a graph server that lost writes is behind until the next drain replays them)."""
    try:
        lag = ops.decision_lag(client, keys)
        if lag["length"] < len(answered) or lag["pending"] + lag["undelivered"]:
            return False
        for stream in keys.decision_streams:
            frontier = ops.frontiers(client, stream).get(DECISION_GROUP)
            if frontier is not None and store.replay_point(stream) != frontier:
                return False
        return True
    except (redis.RedisError, FraudringError):
        return False


def _stream_txn_ids(client: redis.Redis, keys: Keys) -> list[str]:
    out: list[str] = []
    for stream in keys.decision_streams:
        start = "-"
        while True:
            entries: Any = client.xrange(stream, min=start, count=5000)
            if not entries:
                break
            out.extend(orjson.loads(f[b"d"])["txn"]["txn_id"] for _, f in entries)
            last = entries[-1][0].decode()
            ms, seq = last.split("-")
            start = f"{ms}-{int(seq) + 1}"
    return out


async def _feed(
    base: str, key: str, txns: list[dict[str, Any]], *, at: int, inject: Callable[[], None]
) -> dict[str, Any]:
    """Post batches paced to RATE; run `inject` (in a thread) once `at` have been sent."""
    answered: set[str] = set()
    counts = {"degraded": 0, "refused": 0, "errors": 0, "readyz_503": 0}
    done = asyncio.Event()
    batches = [txns[i : i + BATCH] for i in range(0, len(txns), BATCH)]
    sem = asyncio.Semaphore(4)
    fault: asyncio.Task[None] | None = None
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:

        async def send(batch: list[dict[str, Any]]) -> None:
            async with sem:
                try:
                    r = await http.post("/v1/decisions/batch", json={"transactions": batch})
                except httpx.HTTPError:
                    counts["errors"] += len(batch)
                    return
            if r.status_code == 200:
                for d in r.json()["decisions"]:
                    answered.add(d["txn_id"])
                    counts["degraded"] += bool(d.get("degraded"))
            elif r.status_code == 503:
                counts["refused"] += len(batch)
            else:
                counts["errors"] += len(batch)

        async def probe() -> None:  # /readyz must say so while a fault lasts
            while not done.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.get("/readyz", timeout=5)
                    counts["readyz_503"] += r.status_code == 503
                await asyncio.sleep(0.5)

        prober = asyncio.create_task(probe())
        t0 = time.monotonic()
        tasks = []
        for i, batch in enumerate(batches):
            delay = t0 + i * BATCH / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if fault is None and i * BATCH >= at:
                fault = asyncio.create_task(asyncio.to_thread(inject))
            tasks.append(asyncio.create_task(send(batch)))
        await asyncio.gather(*tasks)
        if fault is not None:
            await fault
        done.set()
        await prober
    return {"answered": answered, **counts}
