"""The stream's knee: the highest decision rate the workers sustain, for 1 and 2 processes.

As the workers-only phase of `bench stream`: a world's decision records are pushed straight onto
the stream (no API), against a fresh embedded Redis + FalkorDB, with a fresh graph and key
prefix per run. The pace rises in steps of STEP_S seconds (RATES); each step reports the rate
actually offered, the backlog growth (mean of the step's second half minus its first, per
second) and freshness p95 (decision to refreshed ring risk, samples of that step). A step is
sustained when the backlog stays flat (growth under 5% of the rate) and freshness p95 < 2 s;
the knee is the highest sustained step. The run stops at the first step not sustained. Each
worker process is a Celery worker (threads pool, 4 threads) as `fraudring worker` starts, with
`fraudring beat` beside them (its 5 s watchdog kicks the drains), after a warm-up of WARMUP
records the workers have drained. Each step also reports the CPU time per decision of the
worker processes, the graph server and Redis, which does not depend on what else runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from bench import BenchError
from bench.measure import redis_cpu_s, tree_cpu_s
from bench.sampling import sampled, shares
from bench.stream import _backlog, _growth, _process, _worker_cmd, push_paced
from bench.stream_support import wait, world_requests
from fraudring.runtime import services
from fraudring.settings import load_settings
from realtime import ops
from realtime.keys import Keys

RATES = (250, 500, 750, 1000, 1500, 2000, 3000, 4000)
STEP_S = 20.0
BATCH = 100
WARMUP = 2_000
FLAT = 0.05  # backlog growth per second under this share of the rate is flat
FRESH_P95_S = 2.0
#: A directory: sample the workers with py-spy during each step and report where the drains'
#: wall time went (`bench.sampling`), the files kept there.
PROFILE_ENV = "FRAUDRING_BENCH_KNEE_PROFILE"
DRAIN = "process_decisions"
MARKS = {
    "graph_write": ("CypherStore.ingest",),
    "ring_pass_or_lease": ("shared_pass",),
    "ring_pass": ("detect_rings",),
}


def _cpu(workers: list[int], servers: list[str]) -> tuple[float, float, float]:
    """CPU seconds so far of the worker processes, the graph server and Redis."""
    return (sum(tree_cpu_s(pid) for pid in workers), redis_cpu_s(servers[1:]),
            redis_cpu_s(servers[:1]))  # fmt: skip


def _step(
    client: redis.Redis,
    keys: Keys,
    txns: list[dict[str, Any]],
    rate: float,
    *,
    workers: list[int] | None = None,
    servers: list[str] | None = None,
) -> dict[str, Any]:
    client.delete(keys.meta("freshness"))
    cpu0 = _cpu(workers or [], servers or [])
    spy = os.environ.get(PROFILE_ENV)
    files: list[Path] = []
    with contextlib.ExitStack() as stack:
        if spy and workers:
            out = Path(spy) / f"{len(workers)}p@{rate:g}"
            files = stack.enter_context(sampled(workers, seconds=len(txns) / rate, out=out))
        t0, elapsed, samples = push_paced(client, keys, txns, rate=rate, batch=BATCH)
    time.sleep(1.0)  # the last decisions' freshness samples
    cpu1 = _cpu(workers or [], servers or [])
    cpu = [(b - a) * 1000 / len(txns) for a, b in zip(cpu0, cpu1, strict=True)]
    fresh = ops.freshness_stats(client, keys)
    offered = len(txns) / elapsed
    growth = _growth(samples, t0=t0, elapsed=elapsed)
    return {
        "rate": rate,
        "offered": round(offered, 1),
        "growth_per_s": round(growth, 1),
        "backlog_end": samples[-1][1] if samples else 0,
        "fresh_p95_s": round(fresh["p95_s"], 3),
        "sustained": bool(growth < FLAT * offered and fresh["p95_s"] < FRESH_P95_S),
        # CPU per decision offered: what the step cost whatever else shared the machine
        "worker_cpu_ms": round(cpu[0], 3),
        "graph_cpu_ms": round(cpu[1], 3),
        "redis_cpu_ms": round(cpu[2], 3),
        "load_1m": round(os.getloadavg()[0], 1),
        **({f"spent_{k}": round(v, 3) for k, v in shares(files, MARKS, within=DRAIN).items()}
           if spy and workers else {}),
    }  # fmt: skip


_SECONDS = re.compile(r"seconds=([0-9.]+)")


def profile(logs: list[Path]) -> dict[str, float]:
    """Where a worker's batch time goes, per 1,000 decisions, from its structured log lines:
    the graph write (the store's `graph.ingested`), the incremental ring pass
    (`graph.rings_detected`) and the rest of the batch (risk writes, alerts, freshness, acks)."""
    batch = write = rings = 0.0
    messages = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            m = _SECONDS.search(line)
            if m is None:
                continue
            if "graph.rings_detected" in line:
                rings += float(m.group(1))
            elif "graph.ingested" in line and "edges_written=" in line:
                write += float(m.group(1))
            elif "graph.ingested" in line and "messages=" in line:
                batch += float(m.group(1))
                messages += int(re.search(r"messages=(\d+)", line).group(1))  # type: ignore[union-attr]
    per = 1000 / max(1, messages)
    return {
        "batch_s_per_1k": batch * per,
        "graph_write_s_per_1k": write * per,
        "ring_pass_s_per_1k": rings * per,
        "other_s_per_1k": (batch - write - rings) * per,
    }


def _run(
    *,
    tmp: Path,
    txns: list[dict[str, Any]],
    processes: int,
    partitions: int,
    redis_url: str,
    graph_url: str,
) -> list[dict[str, Any]]:
    prefix = f"knee-{uuid.uuid4().hex[:8]}:"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")},
        "FRAUDRING_ENV": "test",
        "FRAUDRING_DATA_DIR": str(tmp / "data"),
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": graph_url,
        "FRAUDRING_GRAPH_NAME": f"knee_{uuid.uuid4().hex[:8]}",
        "FRAUDRING_REDIS_PREFIX": prefix,
        "FRAUDRING_API_KEYS": "{}",
        "FRAUDRING_STREAM_PARTITIONS": str(partitions),
    }
    keys = Keys(prefix, partitions=partitions)
    client = redis.Redis.from_url(redis_url)
    steps: list[dict[str, Any]] = []
    pids: list[int] = []
    try:
        with contextlib.ExitStack() as stack:
            beat = [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "INFO",
                    "-s", str(tmp / f"beat-{processes}")]  # fmt: skip
            stack.enter_context(_process(beat, env=env, log=tmp / f"beat-{processes}.log"))
            for i in range(processes):
                cmd = [*_worker_cmd(), "-n", f"knee{i}-{prefix.strip(':')}@%h"]
                log = tmp / f"worker-{processes}-{i}.log"
                proc = stack.enter_context(_process(cmd, env=env, log=log))
                pids.append(proc.pid)
                time.sleep(3)
                if proc.poll() is not None:
                    raise BenchError(f"a worker exited; see {log}")
            # warm-up: the workers are up and draining before the first step is timed
            _step(client, keys, txns[:WARMUP], 500.0)
            servers = [redis_url, graph_url.replace("falkordb://", "redis://", 1)]
            wait(lambda: _backlog(client, keys) == 0, timeout=300, what="the warm-up drain")
            used = WARMUP
            for rate in RATES:
                n = int(rate * STEP_S)
                if used + n > len(txns):
                    break
                step = _step(client, keys, txns[used : used + n], rate, workers=pids,
                             servers=servers)  # fmt: skip
                used += n
                steps.append(step)
                print(f"  {processes} process(es): {step}", flush=True)
                if not step["sustained"]:
                    break
            wait(lambda: _backlog(client, keys) == 0, timeout=900, what="the drain")
    finally:
        ops.delete_prefix(client, prefix)
        client.close()
    return steps


def run(*, transactions: int | None = None, seed: int = 7) -> dict[str, float | int | str]:
    from world.simulate import generate

    n = transactions or int(sum(RATES) * STEP_S) + WARMUP
    out: dict[str, float | int | str] = {
        "data": f"world.simulate hard, seed {seed}, {n:,} transactions; steps of {STEP_S:.0f} s",
        "cpus": os.cpu_count() or 0,
    }
    with tempfile.TemporaryDirectory(prefix="fraudring-knee-") as name:
        tmp = Path(name)
        generate(out=tmp / "world", transactions=n, seed=seed, progress=False)
        txns = world_requests(tmp / "world")
        settings = load_settings(data_dir=tmp / "data", env="test", api_keys={})
        out["stream_partitions"] = settings.stream_partitions
        with services(settings) as ep:
            for processes in (1, 2):
                steps = _run(
                    tmp=tmp,
                    txns=txns,
                    processes=processes,
                    partitions=settings.stream_partitions,
                    redis_url=ep.redis_url,
                    graph_url=ep.graph_url,
                )
                for k, v in profile(sorted(tmp.glob(f"worker-{processes}-*.log"))).items():
                    out[f"{k}[{processes}p]"] = round(v, 3)
                ok = [s["offered"] for s in steps if s["sustained"]]
                out[f"knee_txn_per_s[{processes}p]"] = float(max(ok)) if ok else float("nan")
                for s in steps:
                    tag = f"{processes}p@{s['rate']}"
                    out[f"offered[{tag}]"] = s["offered"]
                    out[f"backlog_growth_per_s[{tag}]"] = s["growth_per_s"]
                    out[f"fresh_p95_s[{tag}]"] = s["fresh_p95_s"]
                    for k in ("worker_cpu_ms", "graph_cpu_ms", "redis_cpu_ms", "load_1m"):
                        out[f"{k}[{tag}]"] = s[k]
                    out.update({f"{k}[{tag}]": v for k, v in s.items() if k.startswith("spent_")})
        for f in tmp.glob("worker-*.log"):
            logs = Path("var/bench")
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"knee-{f.name}").write_bytes(f.read_bytes())
    return out
