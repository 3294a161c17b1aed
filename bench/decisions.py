"""Decision API throughput and server-side latency under an external load generator (wrk).

Full path: `fraudring serve --workers 2` (uvicorn, uvloop, httptools) with Redis velocity + cached
risk (some entities carry a ring), a 300-tree XGBoost model trained here on synthetic rows and
registered as LIVE in a temporary registry, and the default rules. wrk (Debian package) posts
varied transactions (fresh txn ids, 20k users) from a Lua script over loopback for a fixed time,
then hits the trivial endpoint of the same server the same way. Server-side p50 / p99 are read from
the API's own latency histogram (/metrics, difference before / after each run, linear
interpolation inside 0.25 ms buckets). wrk shares the machine's cores with the server and Redis.
`--cluster` runs it a second time with the per-entity state on a 3-node Redis Cluster.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from bench import BenchError
from bench.measure import histogram, quantiles, redis_cpu_s, tree_cpu_s, wrk
from fraudring.registry import ModelRegistry
from fraudring.runtime import free_port, services
from fraudring.settings import hash_api_key, load_settings
from realtime import ops
from realtime.features import FEATURE_NAMES
from realtime.keys import GraphRisk, Keys

DURATION_S = 15
CONNECTIONS = 4
WORKERS = 2
TREES = 300
USERS = 20_000

WRK_LUA = r"""
counter = 0
math.randomseed(%(seed)d)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
request = function()
  counter = counter + 1
  local u = math.random(1, %(users)d)
  local body = string.format(
    '{"txn_id":"%(run)s-%%d","ts":"%%s","user_id":"u%%d","card_id":"tok%%d",' ..
    '"device_id":"d%%d","ip":"10.%%d.%%d.%%d","merchant_id":"m%%d","amount":%%.2f,' ..
    '"currency":"EUR"}',
    counter, os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ"), u, u * 2 + math.random(0, 1),
    u %% 15000, u %% 200, math.random(0, 3), u %% 250, math.random(1, 500),
    math.random() * 800 + 1)
  return wrk.format(nil, nil, nil, body)
end
"""


def _train_model(root: Path, *, seed: int) -> str:
    """A throwaway booster with FEATURE_NAMES, registered and promoted LIVE."""
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    n = 20_000
    x = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    logit = 1.5 * np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 32]) * 2 - 4
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    booster = xgb.train(
        {"max_depth": 6, "eta": 0.05, "objective": "binary:logistic", "nthread": 2, "seed": seed},
        xgb.DMatrix(x, label=y, feature_names=list(FEATURE_NAMES)),
        num_boost_round=TREES,
    )
    path = root / "xgb.json"
    booster.save_model(str(path))
    reg = ModelRegistry(root / "models")
    version = reg.register(
        artifacts={"xgb.json": path},
        manifest={
            "kind": "fraud-model",
            "features": list(FEATURE_NAMES),
            "thresholds": {"review": 0.6, "decline": 0.9},
            "metrics": {"val_pr_auc": 0.0, "note": "synthetic benchmark model, not evaluated"},
            "data_window": {"start": None, "end": None, "name": "bench-synthetic"},
        },
    )
    reg.promote(version, metric="val_pr_auc", force=True)
    return version


def _seed_risk(url: str, keys: Keys, *, seed: int, cluster: bool = False) -> None:
    """Cached risk for a tenth of devices and IPs; some in rings (the MGET then has hits)."""
    rng = np.random.default_rng(seed)
    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for kind, n in (("device", 15_000), ("ip", 250)):
        for i in range(0, n, 10):
            ring = f"r{i % 97}" if rng.random() < 0.2 else None
            risk = GraphRisk(
                score=float(rng.random()),
                ring_id=ring,
                ring_size=int(rng.integers(3, 20)) if ring else 0,
                ring_fraud_rate=float(rng.random() * 0.4) if ring else 0.0,
                model_version="bench",
                updated_at=now,
            )
            ident = f"d{i}" if kind == "device" else f"10.{i % 200}.0.{i % 250}"
            pipe.set(keys.risk(kind, ident), risk.dumps(), ex=3600)
    pipe.execute()
    client.close()


def run(
    *, transactions: int | None, seed: int, cluster: bool = False
) -> dict[str, float | int | str]:
    """`transactions` is unused (the run is time-bound: 15 s per target). With `cluster`, the
    same measurement runs again with the per-entity state on a 3-node Redis Cluster
    (`FRAUDRING_REDIS_CLUSTER_URL`, fraudring.embedded_cluster), its figures beside the
    single-Redis ones under `*[cluster]`."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found: the benchmark drives the API with it (apt install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="fraudring-bench-"))
    settings = load_settings(data_dir=tmp)
    try:
        with services(settings) as ep:
            print(f"redis {ep.redis_url}; training a {TREES}-tree model ...", flush=True)
            version = _train_model(tmp, seed=seed)
            measure = functools.partial(
                _serve_and_measure, tmp=tmp, seed=seed, version=version,
                redis_url=ep.redis_url, graph_url=ep.graph_url,
                partitions=settings.stream_partitions,
            )  # fmt: skip
            out: dict[str, float | int | str] = dict(measure())
            if cluster:
                from fraudring.embedded_cluster import embedded_cluster

                with embedded_cluster(tmp / "cluster", nodes=3) as nodes:
                    print(f"redis cluster {nodes.url} (3 nodes) ...", flush=True)
                    urls = [f"redis://127.0.0.1:{port}/0" for port in nodes.ports]
                    through = measure(cluster_url=nodes.url, node_urls=urls)
                for k, v in through.items():
                    if k in CLUSTER_KEYS:
                        out[f"{k}[cluster]"] = v
                out["cluster"] = "3 masters on loopback, per-entity state (velocity, risk)"
            return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: the figures repeated for the cluster run
CLUSTER_KEYS = (
    "decisions_per_s", "p50_ms", "p99_ms", "client_p50_ms", "client_p99_ms",
    "decisions_measured", "api_cpu_ms_per_decision", "redis_cpu_ms_per_decision",
    "load_avg_1m_at_end", "non_2xx", "degraded_decisions", "stream_length",
)  # fmt: skip


def _serve_and_measure(
    *,
    tmp: Path,
    seed: int,
    version: str,
    redis_url: str,
    graph_url: str,
    partitions: int,
    cluster_url: str | None = None,
    node_urls: list[str] | None = None,
) -> dict[str, Any]:
    """`fraudring serve` on a fresh key prefix (and the cluster, if given), measured."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    _seed_risk(cluster_url or redis_url, Keys(prefix), seed=seed, cluster=cluster_url is not None)
    key = "bench-" + secrets.token_hex(8)
    port = free_port()
    env = {
        **os.environ,
        "FRAUDRING_DATA_DIR": str(tmp),
        "FRAUDRING_MODEL_DIR": str(tmp / "models"),
        "FRAUDRING_REDIS_URL": redis_url,
        "FRAUDRING_GRAPH_URL": graph_url,
        "FRAUDRING_REDIS_PREFIX": prefix,
        "FRAUDRING_API_KEYS": json.dumps({hash_api_key(key): "score"}),
        "FRAUDRING_ENV": "test",
    }
    if cluster_url is not None:
        env["FRAUDRING_REDIS_CLUSTER_URL"] = cluster_url
    code = "from fraudring.cli import main; main()"
    cmd = [sys.executable, "-c", code, "serve", "--port", str(port)]
    server = subprocess.Popen([*cmd, "--workers", str(WORKERS)], env=env, start_new_session=True)
    try:
        return _measure(
            base=f"http://127.0.0.1:{port}",
            key=key,
            tmp=tmp,
            seed=seed,
            version=version,
            redis_urls=[redis_url, *(node_urls or [])],
            prefix=prefix,
            partitions=partitions,
            server_pid=server.pid,
        )
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        client = redis.Redis.from_url(redis_url)
        ops.delete_prefix(client, prefix)
        client.close()


def _wait_ready(base: str, *, key: str, version: str, timeout_s: float = 60) -> None:
    """Until /readyz names the live model (its details need a key)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/readyz", headers={"X-API-Key": key}, timeout=5)
            if r.status_code == 200 and version in r.text:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise BenchError(f"API at {base} not ready with model {version}")


def _measure(
    *,
    base: str,
    key: str,
    tmp: Path,
    seed: int,
    version: str,
    redis_urls: list[str],
    prefix: str,
    partitions: int,
    server_pid: int,
) -> dict[str, Any]:
    redis_url = redis_urls[0]
    _wait_ready(base, key=key, version=version)
    r = httpx.post(
        f"{base}/v1/decisions",
        headers={"X-API-Key": key},
        json={
            "txn_id": "probe",
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "user_id": "u1",
            "card_id": "tok1",
            "device_id": "d0",
            "ip": "10.0.0.0",
            "merchant_id": "m1",
            "amount": 10.0,
            "currency": "EUR",
        },
    )
    r.raise_for_status()
    probe = r.json()
    assert probe["model_version"] == version and not probe["degraded"], probe
    print("probe decision:", json.dumps(probe)[:300], flush=True)
    results: dict[str, dict[str, float]] = {}
    for name, run_id, duration in (("warmup", "w", 3), ("decision", "m", DURATION_S)):
        script = tmp / f"{name}.lua"
        script.write_text(
            WRK_LUA % {"seed": seed, "key": key, "users": USERS, "run": f"{prefix}{run_id}"}
        )
        before = histogram(base, "decision")
        cpu0, rcpu0 = tree_cpu_s(server_pid), redis_cpu_s(redis_urls)
        print(f"wrk {name}: {duration} s, {CONNECTIONS} connections ...", flush=True)
        res = wrk(f"{base}/v1/decisions", script=script, duration=duration, connections=CONNECTIONS)
        cpu1, rcpu1 = tree_cpu_s(server_pid), redis_cpu_s(redis_urls)
        p50, p99, n = quantiles(before, histogram(base, "decision"))
        results[name] = {
            **res,
            "p50_ms": p50,
            "p99_ms": p99,
            "n": n,
            "api_cpu_ms": (cpu1 - cpu0) * 1000 / max(n, 1),
            "redis_cpu_ms": (rcpu1 - rcpu0) * 1000 / max(n, 1),
        }
    before = histogram(base, "trivial")
    print(f"wrk trivial: {DURATION_S} s ...", flush=True)
    cpu0 = tree_cpu_s(server_pid)
    res = wrk(f"{base}/v1/trivial", script=None, duration=DURATION_S, connections=CONNECTIONS)
    cpu1 = tree_cpu_s(server_pid)
    tp50, tp99, tn = quantiles(before, histogram(base, "trivial"))
    d = results["decision"]
    client = redis.Redis.from_url(redis_url)
    stream_len = ops.decision_lag(client, Keys(prefix, partitions=partitions))["length"]
    client.close()
    metrics = httpx.get(f"{base}/metrics").text
    degraded = re.search(r"^fraudring_degraded_decisions_total ([0-9.e+]+)$", metrics, re.M)
    return {
        "decisions_per_s": round(d["rps"], 1),
        "p50_ms": round(d["p50_ms"], 3),
        "p99_ms": round(d["p99_ms"], 3),
        "trivial_per_s": round(res["rps"], 1),
        "ratio": round(d["rps"] / res["rps"], 4),
        "trivial_p50_ms": round(tp50, 3),
        "trivial_p99_ms": round(tp99, 3),
        "client_p50_ms": round(d["client_p50_ms"], 3),
        "client_p99_ms": round(d["client_p99_ms"], 3),
        "decisions_measured": d["n"],
        "api_cpu_ms_per_decision": round(d["api_cpu_ms"], 3),
        "redis_cpu_ms_per_decision": round(d["redis_cpu_ms"], 3),
        "api_cpu_ms_per_trivial": round((cpu1 - cpu0) * 1000 / max(tn, 1), 3),
        "cpu_bound_decisions_per_s_2_cores": round(2000 / (d["api_cpu_ms"] + d["redis_cpu_ms"]), 1),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "non_2xx": int(d["non2xx"] + results["warmup"]["non2xx"]),
        "degraded_decisions": int(float(degraded.group(1))) if degraded else 0,
        "stream_length": stream_len,
        "connections": CONNECTIONS,
        "api_workers": WORKERS,
        "trees": TREES,
        "duration_s": DURATION_S,
        "cpus": os.cpu_count() or 0,
        "load_generator": "wrk -t1 (Debian), same machine",
    }
