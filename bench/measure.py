"""What `bench decisions` reads from outside the API: CPU time of process trees and Redis
servers, the API's latency histogram (/metrics) and wrk's report."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import redis


def tree_cpu_s(root: int) -> float:
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


def redis_cpu_s(urls: list[str]) -> float:
    """CPU seconds of the Redis servers (the main one and any cluster nodes), summed."""
    total = 0.0
    for url in urls:
        client = redis.Redis.from_url(url)
        info = client.info("cpu")
        client.close()
        total += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return total


def histogram(base: str, route: str) -> dict[float, float]:
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


def quantiles(before: dict[float, float], after: dict[float, float]) -> tuple[float, float, int]:
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


def wrk(url: str, *, script: Path | None, duration: int, connections: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
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
