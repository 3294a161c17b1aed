"""The decision engine: one transaction in, approve / review / decline out, durably recorded.

Hot path: one Lua call (idempotency + velocity read/update + risk MGET), features, XGBoost, rules,
policy, then one more Lua call that stores the decision and appends it to the decision stream
atomically. Any Redis failure or timeout (settings.redis_timeout_ms) degrades instead of failing:
the decision uses the request's own features, the model and the rules, says `degraded: true`, and
goes to the local spool, replayed into the stream once each when Redis answers again. After a
failure Redis is skipped for 250 ms, so an outage costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from fraudring.errors import Conflict
from fraudring.logs import get_logger
from fraudring.settings import Settings
from realtime import resp
from realtime.features import assemble, ring_context
from realtime.idempotency import Remembered
from realtime.keys import DECISION_GROUP, ENTITY_KINDS, GraphRisk, Keys
from realtime.outbox import Spool
from realtime.policy import Thresholds, decide
from realtime.rules import RulesHolder
from realtime.schemas import Transaction
from realtime.scorer import Scorer
from realtime.velocity import State, VelocityStore

log = get_logger(__name__)

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
RETRY_REDIS_AFTER_S = 0.25
NOTE_DEGRADED = (
    "degraded: Redis unavailable; decided from the request's own features, the model and the "
    "rules (no velocity, no graph risk)"
)
NOTE_NO_MODEL = "no model: rules only"


class DecisionInProgress(Conflict):
    code = "decision_in_progress"


@dataclass(slots=True)
class Outcome:
    """What the API needs: the JSON body and what the metrics count."""

    body: bytes
    decision: str
    degraded: bool
    replayed: bool = False
    rules: list[str] = field(default_factory=list)


def redis_client(url: str, *, timeout_ms: int) -> Redis:
    """Short timeouts; one immediate retry on a broken connection (a pooled one after a restart)."""
    t = timeout_ms / 1000
    return Redis.from_url(
        url,
        socket_timeout=t,
        socket_connect_timeout=t,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )


class DecisionEngine:
    def __init__(self, settings: Settings, *, client: Redis | None = None) -> None:
        assert settings.redis_url is not None, "the engine needs a Redis URL (see runtime)"
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.redis = client or redis_client(
            settings.redis_url, timeout_ms=settings.redis_timeout_ms
        )
        fast = None
        if client is None and resp.supports(settings.redis_url):
            fast = resp.RespScripts(settings.redis_url, timeout_s=settings.redis_timeout_ms / 1000)
        self.store = VelocityStore(
            self.redis, self.keys, fast=fast, decision_ttl_s=settings.idempotency_ttl_s
        )
        self.scorer = Scorer(settings.models_path)
        self.rules = RulesHolder(settings.rules_path)
        self.spool = Spool(settings.data_dir / "spool")
        self._skip_redis_until = 0.0
        self._group_ready = False

    # -- Redis availability -------------------------------------------------------------------
    def redis_usable(self) -> bool:
        return time.monotonic() >= self._skip_redis_until

    def _redis_failed(self, exc: BaseException, where: str) -> None:
        if self.redis_usable():
            log.warning("decision.redis_unavailable", where=where, error=repr(exc))
        self._skip_redis_until = time.monotonic() + RETRY_REDIS_AFTER_S

    async def ensure_group(self) -> bool:
        """Create the workers' consumer group from the stream's start, so nothing is missed."""
        if self._group_ready:
            return True
        try:
            await self.redis.xgroup_create(
                self.keys.decisions_stream, DECISION_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "ensure_group")
            return False
        self._group_ready = True
        return True

    # -- deciding -----------------------------------------------------------------------------
    async def decide(self, txn: Transaction) -> Outcome:
        state: State | None = None
        if self.redis_usable():
            try:
                state = await self.store.decide(txn)
            except REDIS_ERRORS as exc:
                self._redis_failed(exc, "decide")
            except Exception as exc:  # a bug must cost velocity, not the caller's answer
                log.error("decision.redis_step_failed", error=repr(exc))
                self._redis_failed(exc, "decide")
        if state is not None and state.status != "ok":
            return await self._existing(txn, state)
        return await self._fresh(txn, state)

    async def _existing(self, txn: Transaction, state: State) -> Outcome:
        """The remembered decision for a retry with the same body; 409 for another body."""
        txn_id = txn.txn_id
        stored = state.stored
        deadline = time.monotonic() + 0.2
        while stored is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            try:
                stored = await self.store.stored(txn_id)
            except REDIS_ERRORS as exc:
                self._redis_failed(exc, "stored")
                break
        if stored is None:
            raise DecisionInProgress(
                f"a decision for transaction {txn_id!r} is being made; retry shortly"
            )
        memo = Remembered.loads(stored)
        memo.check(txn_id, txn.body_hash())
        body = memo.body(txn_id, review_means=self.settings.review_means.value)
        return Outcome(body=body, decision=memo.decision, degraded=memo.degraded, replayed=True)

    async def _fresh(self, txn: Transaction, state: State | None) -> Outcome:
        degraded = state is None
        risks: list[GraphRisk | None] = (
            state.risks if state is not None and state.risks is not None else [None] * 5
        )
        row = assemble(
            amount=txn.amount,
            ts=txn.epoch,
            velocity=state.velocity if state is not None else None,
            risks=risks,
            stats=state.stats if state is not None else (None, None),
            user_window=state.user_window if state is not None else None,
        )
        values = row[0].tolist()
        fired = self.rules.ruleset.evaluate(values)
        model = self.scorer.model
        notes: list[str] = []
        contributions: list[dict[str, Any]] = []
        model_score: float | None = None
        if model is not None:
            model_score, top = model.score(row)
            contributions = [
                {"feature": f, "value": None if v != v else v, "contribution": c} for f, v, c in top
            ]
        else:
            notes.append(NOTE_NO_MODEL)
            if self.scorer.error:
                notes.append(f"model refused: {self.scorer.error}")
        if degraded:
            notes.append(NOTE_DEGRADED)
        s = self.settings
        thresholds = Thresholds.pick(
            model.thresholds if model else None,
            review=s.review_threshold,
            decline=s.decline_threshold,
        )
        verdict = decide(model_score=model_score, fired=fired, thresholds=thresholds)
        ring = None
        best = _ring(risks)
        if best is not None:
            kind, r = best
            ring = {
                "ring_id": r.ring_id,
                "size": r.ring_size,
                "fraud_rate": r.ring_fraud_rate,
                "entity": kind,
                "gcn_score": r.gcn_score,
            }
        decided_at = time.time()
        version = model.version if model else None
        body = {
            "txn_id": txn.txn_id,
            "decision": verdict.decision,
            "score": verdict.score,
            "review_means": s.review_means.value if verdict.decision == "review" else None,
            "degraded": degraded,
            "model_version": version,
            "decided_at": decided_at,
            "explanation": {
                "rules": [{"name": r.name, "action": r.action, "score": r.score} for r in fired],
                "contributions": contributions,
                "ring": ring,
                "notes": notes,
            },
        }
        answer = orjson.dumps(body)
        stored = Remembered(
            body_hash=txn.body_hash(),
            decision=verdict.decision,
            score=verdict.score,
            model_version=version,
            decided_at=decided_at,
            degraded=degraded,
        ).dumps()
        record = orjson.dumps(
            {
                "txn": txn.record(),
                "decision": verdict.decision,
                "score": verdict.score,
                "decided_at": decided_at,
                "model_version": version,
                "degraded": degraded,
            }
        )
        if not await self._record(txn.txn_id, stored, record, applied=not degraded):
            entry = {"stored": stored.decode(), "record": record.decode()}
            try:
                await asyncio.to_thread(self.spool.append, entry)
            except OSError as exc:
                # Neither Redis nor the disk takes it: answer anyway (the caller must not get a
                # 5xx for a valid request) and say so loudly; the log line carries the record.
                log.error("decision.unrecorded", error=repr(exc), record=entry["record"])
        log.debug("decision.made", txn_id=txn.txn_id, decision=verdict.decision, degraded=degraded)
        return Outcome(
            body=answer,
            decision=verdict.decision,
            degraded=degraded,
            rules=[r.name for r in fired],
        )

    async def _record(self, txn_id: str, stored: bytes, record: bytes, *, applied: bool) -> bool:
        """Store + stream the decision; False means "spool it" (Redis down or was skipped)."""
        if not applied or not self.redis_usable():
            return False
        try:
            await self.store.record(txn_id=txn_id, stored=stored, record=record)
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "record")
            return False
        except Exception as exc:  # spool it rather than fail the request
            log.error("decision.record_failed", error=repr(exc))
            self._redis_failed(exc, "record")
            return False
        return True

    # -- background upkeep ----------------------------------------------------------------------
    async def _send_spooled(self, entry: dict[str, Any]) -> bool:
        record = entry["record"]
        # Accepted when it was decided: not checked again (a cap changed since must not stick
        # the spool); only the fields the velocity script reads are used.
        raw = orjson.loads(record)["txn"]
        txn = Transaction.model_construct(
            **{**raw, "ts": datetime.fromisoformat(raw["ts"]), "amount": float(raw["amount"])}
        )
        return await self.store.replay(txn, stored=entry["stored"].encode(), record=record.encode())

    async def replay_spool(self) -> tuple[int, int]:
        """Replay spooled decisions into the stream (each once); (0, 0) if Redis is still down."""
        if not self.spool.has_entries() or not self.redis_usable():
            return 0, 0
        try:
            return await self.spool.replay(self._send_spooled)
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "replay")
            return 0, 0

    async def upkeep(self) -> None:
        """Every second: reload model / rules when changed, make the group, replay the spool."""
        await asyncio.to_thread(self.scorer.refresh)
        self.rules.reload_if_changed()
        if self.redis_usable():
            await self.ensure_group()
            await self.replay_spool()

    async def run_upkeep(self, interval_s: float = 1.0) -> None:
        while True:
            try:
                await self.upkeep()
            except Exception as exc:  # the loop must survive anything; it is only housekeeping
                log.error("engine.upkeep_failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    async def ping(self) -> tuple[bool, str]:
        try:
            t0 = time.perf_counter()
            await self.redis.ping()
        except REDIS_ERRORS as exc:
            return False, f"unreachable: {exc!r}"
        return True, f"ping {(time.perf_counter() - t0) * 1000:.1f} ms"

    async def close(self) -> None:
        if self.store.fast is not None:
            self.store.fast.close()
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.aclose()


def _ring(risks: list[GraphRisk | None]) -> tuple[str, GraphRisk] | None:
    return ring_context(dict(zip(ENTITY_KINDS, risks, strict=True)))
