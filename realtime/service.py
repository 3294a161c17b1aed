"""The decision engine: one transaction in, approve / review / decline out, durably recorded.

Hot path: one Lua call (idempotency + velocity read/update + risk MGET), features, XGBoost, rules,
policy, then one more Lua call that stores the decision and appends it to the decision stream
atomically. Any Redis failure or timeout (settings.redis_timeout_ms) degrades instead of failing:
the decision uses the request's own features, the model and the rules, says `degraded: true`, and
goes to the local spool, replayed into the stream once each when Redis answers again. After a
failure Redis is skipped for 250 ms, so an outage costs one timeout, not one per request.

Redis keeps its writes in an append-only file synced every second, so a crash of Redis may take
the last second of recorded decisions with it: each process keeps what it recorded for
`redis_recover_window_s` and, when Redis comes back as a new process (another run id), records
those again (once each, by txn_id) and reports how many were missing. A decision that neither
Redis nor the spool (nor its fallback) could record is never answered `approve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from fraudring.errors import Conflict, Unavailable
from fraudring.logs import get_logger
from fraudring.settings import Settings
from realtime import lists, resp
from realtime.cluster import ClusterVelocityStore, cluster_client, router_for
from realtime.features import assemble, ring_context
from realtime.idempotency import Remembered
from realtime.keys import DECISION_GROUP, ENTITY_KINDS, GraphRisk, Keys
from realtime.outbox import Spool, SpoolUnwritable
from realtime.policy import Thresholds, decide
from realtime.recovery import REDIS_ERRORS, RedisRecovery
from realtime.rules import RulesHolder
from realtime.schemas import Transaction
from realtime.scorer import Scorer
from realtime.velocity import State, VelocityStore

log = get_logger(__name__)

NOTE_DEGRADED = (
    "degraded: Redis unavailable; decided from the request's own features, the model and the "
    "rules (no velocity, no graph risk)"
)
NOTE_NO_MODEL = "no model: rules only"


class DecisionInProgress(Conflict):
    code = "decision_in_progress"


class DecisionUnrecorded(Unavailable):
    """An approval that could be recorded nowhere: the caller's own fallback decides."""

    code = "decision_unrecorded"


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


class DecisionEngine(RedisRecovery):
    def __init__(self, settings: Settings, *, client: Redis | None = None) -> None:
        assert settings.redis_url is not None, "the engine needs a Redis URL (see runtime)"
        self.settings = settings
        self.keys = Keys(settings.redis_prefix, partitions=settings.stream_partitions)
        self.redis = client or redis_client(
            settings.redis_url, timeout_ms=settings.redis_timeout_ms
        )
        fast = None
        if client is None and resp.supports(settings.redis_url):
            fast = resp.RespScripts(settings.redis_url, timeout_s=settings.redis_timeout_ms / 1000)
        self.store = _velocity_store(settings, self.redis, self.keys, fast=fast)
        self.scorer = Scorer(settings.models_path)
        self.rules = RulesHolder(settings.rules_path)
        self.spool = Spool(settings.data_dir / "spool", fallback=settings.spool_fallback_dir)
        self._skip_redis_until = 0.0
        self._redis_timeouts = 0
        self._group_ready = False
        #: (monotonic time, transaction, stored, record, review_at) of recent recorded decisions
        self._recent: deque[tuple[float, Transaction, bytes, bytes, float | None]] = deque()
        self._run_id: str | None = None
        #: the last recovery after a Redis restart (for logs, /readyz and tests)
        self.last_recovery: dict[str, Any] | None = None

    async def ensure_group(self) -> bool:
        """Create the workers' consumer group on every partition from the stream's start, so
        nothing is missed."""
        if self._group_ready:
            return True
        for stream in self.keys.decision_streams:
            try:
                await self.redis.xgroup_create(stream, DECISION_GROUP, id="0", mkstream=True)
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
                self._redis_answered()
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
        body = memo.answer(txn_id, review_means=self.settings.review_means.value)
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
        outcome, list_rules, list_notes = lists.apply(
            verdict.decision, state.lists if state is not None else []
        )
        notes += list_notes
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
            "decision": outcome,
            "score": verdict.score,
            "review_means": _review_means(outcome, list_rules, s.review_means.value),
            "degraded": degraded,
            "model_version": version,
            "decided_at": decided_at,
            "explanation": {
                "rules": [
                    *({"name": r.name, "action": r.action, "score": r.score} for r in fired),
                    *list_rules,
                ],
                "contributions": contributions,
                "ring": ring,
                "notes": notes,
            },
        }
        answer = orjson.dumps(body)
        stored = Remembered(
            body_hash=txn.body_hash(),
            decision=outcome,
            score=verdict.score,
            model_version=version,
            decided_at=decided_at,
            degraded=degraded,
            full=answer if outcome == "review" else None,
        ).dumps()
        record = orjson.dumps(
            {
                "txn": txn.record(),
                "decision": outcome,
                "score": verdict.score,
                "decided_at": decided_at,
                "model_version": version,
                "degraded": degraded,
            }
        )
        review_at = decided_at if outcome == "review" else None
        recorded = await self._record(
            txn, stored, record, applied=not degraded, review_at=review_at
        )
        if not recorded:
            entry = {"stored": stored.decode(), "record": record.decode()}
            try:
                await asyncio.to_thread(self.spool.append, entry)
            except SpoolUnwritable as exc:
                # Neither Redis nor a disk takes it: a decline or review is still the safer
                # answer, but an approval nobody can find later is refused (503).
                log.error("decision.unrecorded", error=str(exc), record=entry["record"])
                if outcome == "approve":
                    raise DecisionUnrecorded(
                        "the decision could not be recorded (Redis and the spool are both "
                        "unavailable); apply your fallback policy and retry"
                    ) from None
        log.debug("decision.made", txn_id=txn.txn_id, decision=outcome, degraded=degraded)
        return Outcome(
            body=answer,
            decision=outcome,
            degraded=degraded,
            rules=[r.name for r in fired] + [r["name"].split(":", 1)[0] for r in list_rules],
        )

    async def _record(
        self,
        txn: Transaction,
        stored: bytes,
        record: bytes,
        *,
        applied: bool,
        review_at: float | None = None,
    ) -> bool:
        """Store + stream the decision; False means "spool it" (Redis down or was skipped)."""
        if not applied or not self.redis_usable():
            return False
        try:
            await self.store.record(
                txn_id=txn.txn_id,
                user_id=txn.user_id,
                stored=stored,
                record=record,
                review_at=review_at,
            )
        except REDIS_ERRORS as exc:
            self._redis_failed(exc, "record")
            return False
        except Exception as exc:  # spool it rather than fail the request
            log.error("decision.record_failed", error=repr(exc))
            self._redis_failed(exc, "record")
            return False
        self._redis_answered()
        if self.settings.redis_recover_window_s > 0:
            self._recent.append((time.monotonic(), txn, stored, record, review_at))
        return True

    # -- background upkeep ----------------------------------------------------------------------
    async def upkeep(self) -> None:
        """Every second: reload model / rules when changed, make the group, re-record what a
        restarted Redis lost, replay the spool."""
        await asyncio.to_thread(self.scorer.refresh)
        self.rules.reload_if_changed()
        if self.redis_usable():
            await self.ensure_group()
            await self.recover_after_restart()
            await self.replay_spool()

    async def run_upkeep(self, interval_s: float = 1.0) -> None:
        while True:
            try:
                await self.upkeep()
            except Exception as exc:  # the loop must survive anything; it is only housekeeping
                log.error("engine.upkeep_failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    async def ping(self) -> tuple[bool, str]:
        """A write and its read back (a Redis that answers PING may still refuse writes: a
        full disk, out of memory, a replica)."""
        key = self.keys.meta(f"probe:{os.getpid()}")
        try:
            t0 = time.perf_counter()
            token = repr(time.time()).encode()
            await self.redis.set(key, token, px=60_000)
            if await self.redis.get(key) != token:
                return False, "a probe write did not read back"
        except REDIS_ERRORS as exc:
            return False, f"unreachable or refusing writes: {type(exc).__name__}: {exc}"
        return True, f"write + read {(time.perf_counter() - t0) * 1000:.1f} ms"

    async def close(self) -> None:
        if self.store.fast is not None:
            self.store.fast.close()
        if isinstance(self.store, ClusterVelocityStore):
            if self.store.router is not None:
                self.store.router.close()
            with contextlib.suppress(*REDIS_ERRORS):
                await self.store.cluster.aclose()
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.aclose()


def _review_means(outcome: str, list_rules: list[dict[str, Any]], default: str) -> str | None:
    """A step-up list asks the customer to authenticate, whatever the deployment's default."""
    if outcome != "review":
        return None
    if any(r["name"].startswith("step_up_list:") for r in list_rules):
        return "step_up"
    return default


def _velocity_store(
    settings: Settings, client: Redis, keys: Keys, *, fast: resp.RespScripts | None
) -> VelocityStore:
    """Per-entity state on the cluster when one is configured (realtime.cluster), else here."""
    ttl, review = settings.idempotency_ttl_s, settings.review_keep_s
    if settings.redis_cluster_url is None:
        return VelocityStore(client, keys, fast=fast, decision_ttl_s=ttl, review_ttl_s=review)
    url, timeout_ms = settings.redis_cluster_url, settings.redis_timeout_ms
    router = router_for(url, timeout_ms=timeout_ms) if fast is not None else None
    cluster = cluster_client(url, timeout_ms=timeout_ms)
    return ClusterVelocityStore(
        client,
        keys,
        cluster=cluster,
        fast=fast,
        router=router,
        decision_ttl_s=ttl,
        review_ttl_s=review,
    )


def _ring(risks: list[GraphRisk | None]) -> tuple[str, GraphRisk] | None:
    return ring_context(dict(zip(ENTITY_KINDS, risks, strict=True)))
