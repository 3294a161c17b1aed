"""Prometheus metrics and the server-side latency middleware.

With several uvicorn workers, `fraudring serve` sets PROMETHEUS_MULTIPROC_DIR (settings field
`metrics_dir`) so /metrics adds up every worker; with one process the default registry is used.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Fine buckets around the 10 ms budget so p50 / p99 can be read off the histogram.
LATENCY_BUCKETS = (
    *(i / 4000 for i in range(1, 21)),  # 0.25 ms .. 5 ms by 0.25 ms
    0.006, 0.007, 0.008, 0.009, 0.010, 0.0125, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
TIMED_PATHS = {
    "/v1/decisions": "decision",
    "/v1/decisions/batch": "batch",
    "/v1/trivial": "trivial",
}

REQUEST_SECONDS = Histogram(
    "fraudring_request_seconds",
    "Server-side request latency (ASGI app entry to last body byte), by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
DECISIONS = Counter("fraudring_decisions_total", "Decisions made, by outcome.", ["outcome"])
DEGRADED = Counter("fraudring_degraded_decisions_total", "Decisions made without Redis.")
IDEMPOTENT = Counter("fraudring_idempotent_replays_total", "Retries answered with the stored one.")
RULE_HITS = Counter("fraudring_rule_hits_total", "Rules that fired, by rule.", ["rule"])


def count(*, decision: str, degraded: bool, replayed: bool, rules: list[str]) -> None:
    if replayed:
        IDEMPOTENT.inc()
        return
    DECISIONS.labels(decision).inc()
    if degraded:
        DEGRADED.inc()
    for name in rules:
        RULE_HITS.labels(name).inc()


def exposition(metrics_dir: Path | None) -> tuple[bytes, str]:
    if metrics_dir is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class TimingMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead): histogram + a Server-Timing header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = TIMED_PATHS.get(scope["path"])
        t0 = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1000
                headers = list(message.get("headers", ()))
                headers.append((b"server-timing", f"app;dur={ms:.3f}".encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if route is not None:
                REQUEST_SECONDS.labels(route).observe(time.perf_counter() - t0)
