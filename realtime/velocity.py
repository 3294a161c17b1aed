"""Velocity state, cached graph risk and statistics, and idempotency in one Redis round trip.

Per entity (keys ``{p}vel:{kind}:{id}:{window}``, see realtime.keys):

- ``min``: hash of one-minute buckets, field ``n<bucket>`` = count, ``a<bucket>`` = amount sum
  (bucket = floor(ts/60)); fields older than 60 buckets are deleted when seen; key TTL 2 h.
- ``hour``: same with one-hour buckets (floor(ts/3600)), kept 168 buckets for user and card (7 d
  windows) and 24 for device, IP and merchant; key TTL 8 d (user, card) or 2 d.
- ``seen:{kind}``: sorted set member -> last-seen ts (user's devices / cards / IPs; users of a
  device, IP, card); trimmed by score to 30 days and to the 1000 newest; key TTL 31 d.
- ``last`` (user only): ts of the user's latest transaction; key TTL 90 d.
- ``day`` (user only): calendar-day buckets (floor(ts/86400)) of count and amount, 30 kept;
  key TTL 32 d. ``spike`` (user only): sorted set of the user's spikes (a transaction over
  SPIKE_RATIO times the median in the user's cached statistics), 14 days; key TTL 15 d.

Windows use the transaction's own ts (event time) and read the state BEFORE this transaction is
added, exactly as the offline trainer computes them (see realtime.features for the definitions).
Key TTLs are wall-clock and only bound memory; the windows never rely on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis

from fraudring.contract.transaction import Transaction
from realtime.features import USER_WINDOW_FEATURES, VELOCITY_FEATURES
from realtime.keys import (
    ENTITY_KINDS,
    MERCHANT_STATS_SIZE,
    USER_STATS_SIZE,
    EntityStats,
    GraphRisk,
    Keys,
    ListEntry,
)
from realtime.resp import RespScripts, sha1
from realtime.velocity_lua import LUA_DECIDE, LUA_RECORD, LUA_REPLAY

#: The idempotency window when none is given (settings.idempotency_ttl_s).
DECISION_TTL_S: Final = 48 * 3600
#: A decision being computed; long enough to outlive a Redis outage, so a spool replay can tell
#: "velocity already applied" (pending) from "never applied" (missing).
PENDING_TTL_S: Final = 3600
#: How long a review's record (with its explanation) is kept when none is given
#: (settings.review_keep_s).
REVIEW_TTL_S: Final = 30 * 86400
PENDING: Final = b"pending"
SEEN_DAYS: Final = 30
SEEN_MAX: Final = 1000


@dataclass(frozen=True, slots=True)
class State:
    """Result of the decide script: either a stored decision, in-flight, or fresh features."""

    status: str  # "ok" | "dup" | "pending"
    velocity: list[float] | None = None
    risks: list[GraphRisk | None] | None = None
    #: the (merchant, user) statistics cache entries, None where unknown
    stats: tuple[EntityStats | None, EntityStats | None] = (None, None)
    #: USER_WINDOW_FEATURES (30-day count and mean, spikes over 7 / 14 days)
    user_window: list[float] | None = None
    stored: bytes | None = None
    #: block / allow / step-up entries of the transaction's entities (realtime.lists)
    lists: list[ListEntry] = field(default_factory=list)


def _num(raw: bytes) -> float:
    return float(raw) if raw else math.nan


def _risk(raw: bytes) -> GraphRisk | None:
    if not raw:
        return None
    try:
        return GraphRisk.loads(raw)
    except (ValueError, TypeError):
        return None  # a malformed cache entry is unknown risk, not a failed decision


class VelocityStore:
    """The three scripts over one async Redis client (the two hot ones over `fast` if given)."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        *,
        fast: RespScripts | None = None,
        decision_ttl_s: int = DECISION_TTL_S,
        review_ttl_s: int = REVIEW_TTL_S,
    ) -> None:
        self.client = client
        self.decision_ttl_s = decision_ttl_s
        self.review_ttl_s = review_ttl_s
        self.keys = keys
        self.fast = fast
        self._decide = client.register_script(LUA_DECIDE)
        self._replay = client.register_script(LUA_REPLAY)
        self._record = client.register_script(LUA_RECORD)
        self._decide_sha, self._record_sha = sha1(LUA_DECIDE), sha1(LUA_RECORD)

    def _keys(self, t: Transaction) -> list[str]:
        return [self.keys.decision(t.txn_id), self.keys.decisions_stream_for(t.user_id)]

    def _args(self, t: Transaction) -> list[Any]:
        ts = t.epoch
        fields = (
            repr(ts),
            repr(t.amount),
            str(int(ts // 60)),
            str(int(ts // 3600)),
            str(PENDING_TTL_S),
            repr(ts - 7 * 86400),
            repr(ts - SEEN_DAYS * 86400),
            *t.ids,
            self.keys.prefix,
        )
        return ["\t".join(fields)]

    async def decide(self, t: Transaction) -> State:
        keys, args = self._keys(t), self._args(t)
        res: Sequence[bytes]
        if self.fast is not None:
            res = await self.fast.evalsha(LUA_DECIDE, self._decide_sha, keys, args)
        else:
            res = await self._decide(keys=keys, args=args)
        status = res[0].decode()
        if status == "dup":
            return State(status="dup", stored=res[1])
        if status == "pending":
            return State(status="pending")
        n = len(VELOCITY_FEATURES)
        velocity = [_num(v) for v in res[1 : 1 + n]]
        risks = [_risk(v) for v in res[1 + n : 1 + n + len(ENTITY_KINDS)]]
        k = 1 + n + len(ENTITY_KINDS)
        merchant, user = res[k : k + 2]
        stats = (
            EntityStats.loads(merchant, size=MERCHANT_STATS_SIZE) if merchant else None,
            EntityStats.loads(user, size=USER_STATS_SIZE) if user else None,
        )
        w = k + 2 + len(USER_WINDOW_FEATURES)
        window = [_num(v) for v in res[k + 2 : w]]
        listed = [ListEntry.loads(v) for v in res[w : w + len(ENTITY_KINDS)] if v]
        return State(
            status="ok",
            velocity=velocity,
            risks=risks,
            stats=stats,
            user_window=window,
            lists=[x for x in listed if x is not None],
        )

    def _ttl(self, review_at: float | None) -> int:
        """A review's record is the review queue's copy of its explanation: kept longer."""
        if review_at is None:
            return self.decision_ttl_s
        return max(self.decision_ttl_s, self.review_ttl_s)

    def _queue(self, txn_id: str, review_at: float | None) -> list[Any]:
        if review_at is None:
            return ["", "", ""]
        return [self.keys.review_queue, repr(review_at), txn_id]

    async def record(
        self,
        *,
        txn_id: str,
        user_id: str,
        stored: bytes,
        record: bytes,
        review_at: float | None = None,
    ) -> bool:
        """Store the final decision and append the stream record (to the user's partition),
        atomically, once; a `review` (decided at `review_at`) also joins the review queue."""
        keys = [self.keys.decision(txn_id), self.keys.decisions_stream_for(user_id)]
        ttl = self._ttl(review_at)
        args: list[Any] = [stored, record, ttl, *self._queue(txn_id, review_at)]
        if self.fast is not None:
            return bool(await self.fast.evalsha(LUA_RECORD, self._record_sha, keys, args))
        return bool(await self._record(keys=keys, args=args))

    async def replay(
        self, t: Transaction, *, stored: bytes, record: bytes, review_at: float | None = None
    ) -> bool:
        """Record a spooled decision once; applies its velocity if the decide script never ran."""
        args = [
            *self._args(t),
            stored,
            record,
            self._ttl(review_at),
            *self._queue(t.txn_id, review_at),
        ]
        return bool(await self._replay(keys=self._keys(t), args=args))

    async def stored(self, txn_id: str) -> bytes | None:
        raw = await self.client.get(self.keys.decision(txn_id))
        if raw is None or raw == PENDING:
            return None
        return raw.encode() if isinstance(raw, str) else raw
