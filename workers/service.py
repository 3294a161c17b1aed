"""The pipeline as library functions (Celery-free, so tests call them directly).

Ingest: read a partition of the decision stream in batches with consumer group ``ingest``,
validate each message strictly (a bad one is dead-lettered with its reason and acknowledged),
write the good ones to the graph (idempotent by txn_id), rescore the touched rings, then
acknowledge. A crash anywhere before the acknowledgement means redelivery, never loss;
redelivery is harmless because ingest is idempotent and scoring overwrites. After the
acknowledgement the graph records how far it applied the partition, and a drain first replays
what a graph server lost since (workers.replay).

Partitions are drained in parallel (each by one drain at a time, so a user's decisions, all in
one partition, stay in order); the ring pass is one at a time across them, shared by the drains
waiting for it (workers.ringpass).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
import redis
from redis.exceptions import LockError

from fraudring.contract.transaction import DecisionRecord
from fraudring.errors import InvalidInput, NotFound
from fraudring.logs import get_logger
from fraudring.settings import Settings
from graph.schemas import IngestResult, LabelResult, Neighbourhood, RingUpdate, TxnRecord
from realtime.keys import DECISION_GROUP, LABEL_GROUP, Keys
from realtime.labels import LabelRecord
from workers import alerts, replay
from workers.ingest import ingest_records, parse_decision
from workers.ringpass import shared_pass
from workers.scoring import (
    RingScorer,
    clear_removed,
    plan_risks,
    record_freshness,
    write_risks,
)
from workers.streams import (
    Message,
    ack,
    deadletter_messages,
    ensure_group,
    fetch,
    validation_reason,
)

log = get_logger(__name__)


class PipelineStore(Protocol):
    """The part of graph.repository.GraphStore the pipeline uses."""

    def replay_point(self, stream: str) -> str | None: ...

    def record_replay_point(self, stream: str, next_id: str) -> None: ...

    def ingest(self, records: Sequence[TxnRecord]) -> IngestResult: ...

    def detect_rings(
        self, *, touched_users: Collection[str] | None = None, now: float | None = None
    ) -> RingUpdate: ...

    def label(
        self, *, kind: str, id: str, label: Literal["fraud", "legitimate"], by: str, at: float
    ) -> LabelResult: ...

    def neighbourhood(self, kind: str, id: str, *, hops: int, max_nodes: int) -> Neighbourhood: ...

    def is_empty(self) -> bool: ...
    def txn_users(self, txn_id: str) -> set[str]: ...


@dataclass
class Pipeline:
    """What one drain needs: Redis, the graph, the ring scorer, settings."""

    client: redis.Redis
    store: PipelineStore
    settings: Settings
    scorer: RingScorer
    #: where the per-entity keys (risk, statistics) live: a cluster client, or None for `client`
    state: redis.Redis | redis.RedisCluster | None = None
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.redis_prefix, partitions=self.settings.stream_partitions)


@dataclass
class BatchStats:
    messages: int = 0
    ingested: int = 0
    duplicates: int = 0
    deadlettered: int = 0
    rings: int = 0
    risks_written: int = 0
    seconds: float = 0.0
    alert_ids: list[str] = field(default_factory=list)

    def add(self, other: BatchStats) -> None:
        for name in ("messages", "ingested", "duplicates", "deadlettered", "rings"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.risks_written += other.risks_written
        self.seconds += other.seconds
        self.alert_ids.extend(other.alert_ids)


@dataclass
class Rescored:
    update: RingUpdate
    written: int
    alert_ids: list[str]


#: the newest of the stored value and ARGV[1], stored and returned (atomic: drains race)
_LUA_MAX = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return cur
"""


def event_time(pipe: Pipeline, batch_max_ts: float | None = None) -> float | None:
    """The stream's clock: the newest transaction time ingested (rings age by event time)."""
    key = pipe.keys.meta("event_time")
    if batch_max_ts is not None:
        return float(pipe.client.eval(_LUA_MAX, 1, key, repr(batch_max_ts)))
    cur = pipe.client.get(key)
    return float(cur) if cur is not None else None


def rescore(pipe: Pipeline, users: Collection[str], *, now: float | None = None) -> Rescored:
    """Re-examine the users' neighbourhoods, score the rings, write every entity's risk: in one
    pass with whatever other drains are waiting with (workers.ringpass)."""
    return shared_pass(
        pipe,
        users,
        lambda taken: _rescore(pipe, taken, now=now),
        empty=Rescored(RingUpdate(full=False, examined_users=0, rings=[]), 0, []),
    )


def _rescore(pipe: Pipeline, users: Collection[str], *, now: float | None) -> Rescored:
    update = pipe.store.detect_rings(touched_users=users, now=now or event_time(pipe))
    if not update.rings:
        clear_removed(pipe.client, pipe.keys, update.removed, state=pipe.state)
        return Rescored(update, 0, [])
    scores, version = pipe.scorer(update.rings)
    plan = plan_risks(update.rings, scores, model_version=version, now=time.time())
    written = write_risks(pipe.client, pipe.keys, plan, state=pipe.state)
    # after: no gap without a risk
    clear_removed(pipe.client, pipe.keys, update.removed, state=pipe.state)
    ids = alerts.ring_alerts(pipe.client, pipe.keys, pipe.settings, update=update, scores=scores)
    return Rescored(update, written, ids)


def process_decisions(pipe: Pipeline, messages: list[Message], *, partition: int = 0) -> BatchStats:
    """Validate, ingest, rescore, acknowledge one batch of a partition (acknowledgement last)."""
    t0 = time.perf_counter()
    stream = pipe.keys.decisions_partition(partition)
    good: list[tuple[Message, DecisionRecord]] = []
    bad: list[tuple[Message, str]] = []
    for msg in messages:
        try:
            good.append((msg, parse_decision(msg, settings=pipe.settings)))
        except (ValueError, orjson.JSONDecodeError) as exc:  # ValidationError is a ValueError
            bad.append((msg, validation_reason(exc)))
    stats = BatchStats(messages=len(messages), deadlettered=len(bad))
    deadletter_messages(pipe.client, pipe.keys, stream=stream, group=DECISION_GROUP, bad=bad)
    if good:
        good, rejected = ingest_records(pipe.store, good)
        stats.ingested, stats.duplicates = rejected.ingested, rejected.duplicates
        stats.deadlettered += len(rejected.bad)
        deadletter_messages(
            pipe.client, pipe.keys, stream=stream, group=DECISION_GROUP, bad=rejected.bad
        )
    if good:
        users = {d.txn.user_id for _, d in good}
        try:
            done = rescore(
                pipe, users, now=event_time(pipe, max(d.txn.ts.timestamp() for _, d in good))
            )
            stats.rings, stats.risks_written = len(done.update.rings), done.written
            stats.alert_ids.extend(done.alert_ids)
        except Exception as exc:  # scoring must not block ingest: queue the users for later
            log.error("score.failed", error=f"{type(exc).__name__}: {exc}", users=len(users))
            pipe.client.sadd(pipe.keys.meta("rescore"), *users)
        record_freshness(pipe.client, pipe.keys, [d.decided_at for _, d in good])
        stats.alert_ids.extend(
            alerts.decision_alerts(pipe.client, pipe.keys, pipe.settings, [d for _, d in good])
        )
        ack(pipe.client, stream, DECISION_GROUP, [m.id for m, _ in good])
    if messages:  # acknowledged: the graph records how far it got, then the stream may shrink
        point = replay.record_point(pipe, partition=partition)
        replay.trim(pipe, graph_point=point, partition=partition)
    stats.seconds = time.perf_counter() - t0
    log.info(
        "graph.ingested",
        partition=partition,
        messages=stats.messages,
        ingested=stats.ingested,
        duplicates=stats.duplicates,
        deadlettered=stats.deadlettered,
        rings=stats.rings,
        seconds=round(stats.seconds, 3),
    )
    return stats


def reapply(pipe: Pipeline, messages: list[Message]) -> int:
    """Write acknowledged messages to the graph again (a replay): the ones it lacks are added,
    their rings rescored; a message that does not parse was dead-lettered when first read."""
    good: list[tuple[Message, DecisionRecord]] = []
    for msg in messages:
        try:
            good.append((msg, parse_decision(msg)))
        except (ValueError, orjson.JSONDecodeError):
            continue
    kept, done = ingest_records(pipe.store, good)
    if done.ingested:
        rescore(pipe, {d.txn.user_id for _, d in kept})
    return done.ingested


def renew_lease(lease: Any, name: str) -> bool:
    """Renew a drain's lease; False once it lapsed (a batch outlasted it), so the drain stops
    and hands over rather than failing the task (which would end the chain of drains)."""
    try:
        lease.reacquire()
    except LockError:
        log.warning("ingest.lease_lost", drain=name)
        return False
    return True


def drain_decisions(
    pipe: Pipeline,
    *,
    consumer: str,
    partition: int = 0,
    max_seconds: float,
    block_ms: int = 1000,
    stop_when_idle: bool = True,
    heartbeat: Callable[[], bool | None] | None = None,
) -> BatchStats:
    """Process batches of one partition for `max_seconds` (or until one block finds nothing,
    if asked); `heartbeat` renews the drain's lease after each batch (False: it was lost)."""
    stream = pipe.keys.decisions_partition(partition)
    ensure_group(pipe.client, stream, DECISION_GROUP)
    # what the graph lost of this partition, if anything
    replay.recover(pipe, apply=lambda msgs: reapply(pipe, msgs), partition=partition)
    total = BatchStats()
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        messages = fetch(
            pipe.client,
            stream=stream,
            group=DECISION_GROUP,
            consumer=consumer,
            count=pipe.settings.ingest_batch,
            block_ms=block_ms,
            claim_idle_ms=pipe.settings.ingest_claim_idle_ms,
        )
        linger = pipe.settings.ingest_linger_ms
        if messages and linger and len(messages) < pipe.settings.ingest_batch // 2:
            time.sleep(linger / 1000)  # let a trickle become a batch: ring detection per batch
            messages += fetch(
                pipe.client,
                stream=stream,
                group=DECISION_GROUP,
                consumer=consumer,
                count=pipe.settings.ingest_batch - len(messages),
                block_ms=0,
                claim_idle_ms=pipe.settings.ingest_claim_idle_ms,
            )
        if messages:
            total.add(process_decisions(pipe, messages, partition=partition))
        elif stop_when_idle:
            break
        if heartbeat is not None and heartbeat() is False:
            break  # the lease lapsed (a batch outlasted it): stop, the next drain goes on
    return total


def rescore_pending(pipe: Pipeline, *, limit: int = 5000) -> int:
    """Rescore users whose scoring failed earlier (or whose labels changed)."""
    raw = pipe.client.spop(pipe.keys.meta("rescore"), limit)
    users = sorted({u.decode() if isinstance(u, bytes) else str(u) for u in raw or []})
    if not users:
        return 0
    try:
        rescore(pipe, users)
    except Exception:
        pipe.client.sadd(pipe.keys.meta("rescore"), *users)
        raise
    return len(users)


def _label_users(pipe: Pipeline, rec: LabelRecord) -> set[str]:
    """Users whose ring a label can change: the user, the txn's user (and a transfer's payee),
    or the entity's users."""
    if rec.kind == "user":
        return {rec.id}
    if rec.kind == "txn":
        return pipe.store.txn_users(rec.id)
    hood = pipe.store.neighbourhood(rec.kind, rec.id, hops=1, max_nodes=500)
    return {n.id for n in hood.nodes if n.kind == "user"}


def drain_labels(pipe: Pipeline, *, consumer: str, max_seconds: float = 10.0) -> int:
    """Apply the labels stream to the graph, then rescore the rings the labels touch."""
    stream = pipe.keys.labels_stream
    ensure_group(pipe.client, stream, LABEL_GROUP)
    applied = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        messages = fetch(
            pipe.client,
            stream=stream,
            group=LABEL_GROUP,
            consumer=consumer,
            count=500,
            block_ms=100,
            claim_idle_ms=pipe.settings.ingest_claim_idle_ms,
        )
        if not messages:
            break
        bad: list[tuple[Message, str]] = []
        users: set[str] = set()
        ok: list[str] = []
        for msg in messages:
            try:
                if msg.raw is None:
                    raise ValueError("entry has no field 'd'")
                rec = LabelRecord.model_validate(orjson.loads(msg.raw))
                pipe.store.label(kind=rec.kind, id=rec.id, label=rec.label, by=rec.by, at=rec.at)
                users |= _label_users(pipe, rec)
                ok.append(msg.id)
            except (ValueError, orjson.JSONDecodeError, InvalidInput, NotFound) as exc:
                bad.append((msg, getattr(exc, "message", None) or validation_reason(exc)))
        deadletter_messages(pipe.client, pipe.keys, stream=stream, group=LABEL_GROUP, bad=bad)
        if users:
            rescore(pipe, users)
        if ok:
            ack(pipe.client, stream, LABEL_GROUP, ok)
        applied += len(ok)
        log.info("labels.applied", n=len(ok), deadlettered=len(bad), rescored_users=len(users))
    return applied
