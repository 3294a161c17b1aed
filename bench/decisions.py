"""Decision API throughput and server-side latency under an external load generator (wrk).

Full path: `fraudring serve --workers 2` (uvicorn, uvloop, httptools) with Redis velocity + cached
risk (some entities carry a ring), a 300-tree XGBoost model trained here on synthetic rows and
registered as LIVE in a temporary registry, and the default rules. wrk (Debian package) posts
varied transactions (fresh txn ids, 20k users) from a Lua script over loopback for a fixed time,
then hits the trivial endpoint of the same server the same way. Server-side p50 / p99 are read from
the API's own latency histogram (/metrics, difference before / after each run, linear
interpolation inside 0.25 ms buckets). wrk shares the machine's cores with the server and Redis.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
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
from fraudring.registry import ModelRegistry
from fraudring.runtime import services
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _seed_risk(url: str, keys: Keys, *, seed: int) -> None:
    """Cached risk for a tenth of devices and IPs; some in rings (the MGET then has hits)."""
    rng = np.random.default_rng(seed)
    client = redis.Redis.from_url(url)
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


def _tree_cpu_s(root: int) -> float:
    """utime + stime of a process and all its descendants (the API's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(c for c, p in parent.items() if p == pid)
    return total


def _redis_cpu_s(url: str) -> float:
    client = redis.Redis.from_url(url)
    info = client.info("cpu")
    client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _histogram(base: str, route: str) -> dict[float, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    out: dict[float, float] = {}
    pat = re.compile(r"^fraudring_request_seconds_bucket\{(.*)\} ([0-9.e+]+)$")
    for line in text.splitlines():
        m = pat.match(line)
        if not m or f'route="{route}"' not in m.group(1):
            continue
        le = re.search(r'le="([^"]+)"', m.group(1))
        assert le is not None
        out[float(le.group(1))] = out.get(float(le.group(1)), 0.0) + float(m.group(2))
    return out


def _quantiles(before: dict[float, float], after: dict[float, float]) -> tuple[float, float, int]:
    bounds = sorted(after)
    cum = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cum[-1] if cum else 0.0

    def q(p: float) -> float:
        target, prev_b, prev_c = p * total, 0.0, 0.0
        for b, c in zip(bounds, cum, strict=True):
            if c >= target:
                if b == float("inf"):
                    return prev_b * 1000
                frac = (target - prev_c) / (c - prev_c) if c > prev_c else 1.0
                return (prev_b + frac * (b - prev_b)) * 1000
            prev_b, prev_c = b, c
        return float("nan")

    return q(0.5), q(0.99), int(total)


def _wrk(url: str, *, script: Path | None, duration: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return {
        "rps": rps,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "client_p50_ms": pct("50"),
        "client_p99_ms": pct("99"),
    }


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    """`transactions` is unused (the run is time-bound: 15 s per target)."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found: the benchmark drives the API with it (apt install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="fraudring-bench-"))
    settings = load_settings(data_dir=tmp)
    try:
        with services(settings) as ep:
            print(f"redis {ep.redis_url}; training a {TREES}-tree model ...", flush=True)
            version = _train_model(tmp, seed=seed)
            prefix = f"bench-{uuid.uuid4().hex[:8]}:"
            _seed_risk(ep.redis_url, Keys(prefix), seed=seed)
            key = "bench-" + secrets.token_hex(8)
            port = _free_port()
            env = {
                **os.environ,
                "FRAUDRING_DATA_DIR": str(tmp),
                "FRAUDRING_MODEL_DIR": str(tmp / "models"),
                "FRAUDRING_REDIS_URL": ep.redis_url,
                "FRAUDRING_GRAPH_URL": ep.graph_url,
                "FRAUDRING_REDIS_PREFIX": prefix,
                "FRAUDRING_API_KEYS": json.dumps({hash_api_key(key): "score"}),
                "FRAUDRING_ENV": "test",
            }
            code = "from fraudring.cli import main; main()"
            cmd = [sys.executable, "-c", code, "serve", "--port", str(port)]
            server = subprocess.Popen(
                [*cmd, "--workers", str(WORKERS)], env=env, start_new_session=True
            )
            try:
                return _measure(
                    base=f"http://127.0.0.1:{port}",
                    key=key,
                    tmp=tmp,
                    seed=seed,
                    version=version,
                    redis_url=ep.redis_url,
                    prefix=prefix,
                    server_pid=server.pid,
                )
            finally:
                os.killpg(server.pid, signal.SIGINT)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                client = redis.Redis.from_url(ep.redis_url)
                ops.delete_prefix(client, prefix)
                client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    redis_url: str,
    prefix: str,
    server_pid: int,
) -> dict[str, Any]:
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
        before = _histogram(base, "decision")
        cpu0, rcpu0 = _tree_cpu_s(server_pid), _redis_cpu_s(redis_url)
        print(f"wrk {name}: {duration} s, {CONNECTIONS} connections ...", flush=True)
        res = _wrk(f"{base}/v1/decisions", script=script, duration=duration)
        cpu1, rcpu1 = _tree_cpu_s(server_pid), _redis_cpu_s(redis_url)
        p50, p99, n = _quantiles(before, _histogram(base, "decision"))
        results[name] = {
            **res,
            "p50_ms": p50,
            "p99_ms": p99,
            "n": n,
            "api_cpu_ms": (cpu1 - cpu0) * 1000 / max(n, 1),
            "redis_cpu_ms": (rcpu1 - rcpu0) * 1000 / max(n, 1),
        }
    before = _histogram(base, "trivial")
    print(f"wrk trivial: {DURATION_S} s ...", flush=True)
    cpu0 = _tree_cpu_s(server_pid)
    res = _wrk(f"{base}/v1/trivial", script=None, duration=DURATION_S)
    cpu1 = _tree_cpu_s(server_pid)
    tp50, tp99, tn = _quantiles(before, _histogram(base, "trivial"))
    d = results["decision"]
    client = redis.Redis.from_url(redis_url)
    stream_len = int(client.xlen(Keys(prefix).decisions_stream))
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
