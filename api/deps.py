"""Per-request access to what the app holds (engine, settings), typed."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Query, Request

from fraudring.settings import Settings
from realtime.service import DecisionEngine

#: Where a page starts: bounded so offset + limit stays a 64-bit integer for Redis (ZRANGE).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]


def engine(request: Request) -> DecisionEngine:
    eng: DecisionEngine = request.app.state.engine
    return eng


def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


class Workbench:
    """Redis for the investigator routes: the keys, and a client with a human's patience (the
    decision engine's client gives up after `redis_timeout_ms`, a few milliseconds)."""

    TIMEOUT_MS = 5000

    def __init__(self, settings: Settings) -> None:
        from realtime.keys import Keys
        from realtime.service import redis_client

        assert settings.redis_url is not None
        self.settings = settings
        self.keys = Keys(settings.redis_prefix, partitions=settings.stream_partitions)
        self.redis = redis_client(settings.redis_url, timeout_ms=self.TIMEOUT_MS)

    async def stored(self, txn_id: str) -> dict[str, Any] | None:
        """A decision: the idempotency record (decision, score, model, time), with the
        explanation when it was a review (its record keeps it); None when unknown."""
        from realtime.idempotency import Remembered

        raw = await self.redis.get(self.keys.decision(txn_id))
        if raw is None or raw in (b"pending", "pending"):
            return None
        record = Remembered.loads(raw.encode() if isinstance(raw, str) else raw)
        body: dict[str, Any] = orjson.loads(record.answer(txn_id, review_means=None))
        return body

    async def close(self) -> None:
        await self.redis.aclose()


def workbench(request: Request) -> Workbench:
    wb: Workbench | None = getattr(request.app.state, "workbench", None)
    if wb is None:
        wb = request.app.state.workbench = Workbench(request.app.state.settings)
    return wb
