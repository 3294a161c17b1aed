"""What the decision engine does when Redis fails or restarts: skip it for a moment after a
failure (an outage costs one timeout, not one per request), replay the local spool into the
stream once Redis answers, and record the recent decisions again when Redis comes back as a new
process that lost its last second of writes (each once, by txn_id)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fraudring.logs import get_logger
from fraudring.settings import Settings
from realtime.keys import Keys
from realtime.outbox import Spool
from realtime.schemas import Transaction
from realtime.velocity import VelocityStore

log = get_logger(__name__)

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
RETRY_REDIS_AFTER_S = 0.25
#: Timeouts in a row before decisions skip Redis for `RETRY_REDIS_AFTER_S`: one slow answer (a
#: busy machine, a large command) costs its own decision the velocity, not every decision of the
#: next quarter second (hundreds at a few thousand a second). Any other error skips at once.
SKIP_AFTER_TIMEOUTS = 3


class RedisRecovery:
    """The engine's Redis availability and recovery (`realtime.service.DecisionEngine` sets
    these attributes up)."""

    settings: Settings
    keys: Keys
    redis: Redis
    store: VelocityStore
    spool: Spool
    _skip_redis_until: float
    #: Redis timeouts since its last answer
    _redis_timeouts: int
    #: (monotonic time, transaction, stored, record, review_at) of recent recorded decisions
    _recent: deque[tuple[float, Transaction, bytes, bytes, float | None]]
    _run_id: str | None
    #: the last recovery after a Redis restart (for logs, /readyz and tests)
    last_recovery: dict[str, Any] | None

    def redis_usable(self) -> bool:
        return time.monotonic() >= self._skip_redis_until

    def _redis_answered(self) -> None:
        self._redis_timeouts = 0

    def _redis_failed(self, exc: BaseException, where: str) -> None:
        if isinstance(exc, (TimeoutError, RedisTimeoutError)):
            self._redis_timeouts += 1
            if self._redis_timeouts < SKIP_AFTER_TIMEOUTS:
                log.info("decision.redis_slow", where=where, timeouts=self._redis_timeouts)
                return
        if self.redis_usable():
            log.warning("decision.redis_unavailable", where=where, error=repr(exc))
        self._skip_redis_until = time.monotonic() + RETRY_REDIS_AFTER_S

    async def _send_spooled(self, entry: dict[str, Any]) -> bool:
        record = entry["record"]
        body = orjson.loads(record)
        review_at = body["decided_at"] if body.get("decision") == "review" else None
        # Accepted when it was decided: not checked again (a cap changed since must not stick
        # the spool); only the fields the velocity script reads are used.
        raw = body["txn"]
        txn = Transaction.model_construct(
            **{**raw, "ts": datetime.fromisoformat(raw["ts"]), "amount": float(raw["amount"])}
        )
        return await self.store.replay(
            txn,
            stored=entry["stored"].encode(),
            record=record.encode(),
            review_at=review_at,
        )

    async def replay_spool(self) -> tuple[int, int]:
        """Replay spooled decisions into the stream (each once); (0, 0) if Redis is still down."""
        if not self.spool.has_entries() or not self.redis_usable():
            return 0, 0
        try:
            return await self.spool.replay(self._send_spooled)
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "replay")
            return 0, 0

    async def recover_after_restart(self) -> int:
        """If Redis is a new process since the last look, record the recent decisions again
        (each once); returns how many it was missing."""
        horizon = time.monotonic() - self.settings.redis_recover_window_s
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        try:
            info: Any = await self.redis.info("server")
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "info")
            return 0
        run_id, previous = str(info.get("run_id")), self._run_id
        if previous is None or run_id == previous:
            self._run_id = run_id
            return 0
        recent = list(self._recent)
        missing = 0
        for _, txn, stored, record, review_at in recent:
            missing += await self.store.replay(
                txn, stored=stored, record=record, review_at=review_at
            )
        self._run_id = run_id  # only once every recent decision is back
        self.last_recovery = {
            "at": time.time(), "run_id": run_id, "recent": len(recent), "missing": missing,
        }  # fmt: skip
        log.warning("decision.redis_restarted", **self.last_recovery)
        if missing:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.redis.set(
                    self.keys.meta("redis_recovery"), orjson.dumps(self.last_recovery)
                )
        return missing
