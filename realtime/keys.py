"""The Redis key layout shared by the API (reads, writes velocity) and the workers (write risk).

Every key starts with the settings' ``redis_prefix`` (``fraudring:`` by default). Entity kinds are
``user``, ``card``, ``device``, ``ip``, ``merchant``. The keys of one entity carry the hash tag
``{kind:id}``, so on Redis Cluster all of an entity's state shares one slot and the decision's
per-entity script (realtime.cluster) touches one slot per entity.

- ``{p}risk:{kind:id}``: string, JSON of `GraphRisk` (written by workers, read with one MGET).
- ``{p}stats:{kind:id}``: string, `EntityStats.dumps` of a merchant or user (written by the
  workers' statistics refresh, read in the decision's Lua call).
- ``{p}vel:{kind:id}:{window}``: velocity state per entity (owned by realtime.velocity).
- ``{p}decision:{txn_id}``: the idempotency record (realtime.idempotency; TTL the setting
  ``idempotency_ttl_s``, 48 h by default).
- ``{p}stream:decisions``: Redis stream the API appends each decision to; field ``d`` holds the
  JSON of the decision record. Workers read it with consumer group ``ingest``. It is
  `Settings.stream_partitions` streams (``stream:decisions``, ``stream:decisions:1``, ...), a
  user's decisions always in the same one (`Keys.decisions_stream_for`), so each is drained on
  its own and a user's transactions stay in order.
- ``{p}stream:labels``: labels posted through the API or imported, field ``d`` JSON.
- ``{p}stream:alerts``: alerts for case tools (field ``d`` JSON).
- ``{p}deadletter``: stream of messages or tasks that kept failing, with their reason.
- ``{p}list:{kind}:{id}``: string, JSON of a block / allow / step-up list entry, expiring with
  it (read in the decision's Lua call); ``{p}lists`` zset of ``kind:id`` by expiry (listing).
- ``{p}stream:audit``: who did what, when and why (labels, list changes, case changes).
- ``{p}case:{id}``: hash of a case; ``{p}case:{id}:events`` its stream of notes, labels,
  actions; ``{p}cases`` zset of case ids by creation; ``{p}meta:case_seq`` the id counter.
- ``{p}queue:review``: zset of txn ids decided `review`, by decision time (the review queue;
  a resolution is in the audit stream). A review's answer with its explanation is its decision
  record, kept `Settings.review_keep_s` (one copy, expiring with its key).
- ``{p}meta:{name}``: small bookkeeping values of the workers.

Every family is bounded by a TTL or a size: `KEY_BOUNDS` lists how (docs/scaling.md prints it).
Per-entity families live on `Settings.redis_cluster_url` when set, everything else on
`Settings.redis_url` (one Redis: streams, idempotency, the Celery broker).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Final

import orjson

from fraudring.contract.ids import ENTITY_KINDS

__all__ = ["DECISION_GROUP", "ENTITY_KINDS", "LABEL_GROUP", "EntityStats", "GraphRisk", "Keys"]

DECISION_GROUP: Final = "ingest"
LABEL_GROUP: Final = "labels"


@dataclass(frozen=True, slots=True)
class GraphRisk:
    """Per-entity graph risk as the workers cache it. Missing means unknown, not safe."""

    score: float
    ring_id: str | None
    ring_size: int
    ring_fraud_rate: float
    model_version: str | None
    updated_at: float  # epoch seconds
    #: the live GCN's ring score, for explanations and alerts; `score` (the graph's ring risk)
    #: is what the decision's features read, because it is what training reproduces
    gcn_score: float | None = None

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> GraphRisk:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class EntityStats:
    """A merchant's or user's cached statistics (`gnn.entitystats.current_stats`): comma-joined
    floats, ``nan`` where unknown. Merchant: 1/7/28-day known fraud rates, first and last known
    fraud ts (epoch s), CPP frauds and rate; user: the 30-day median amount."""

    values: tuple[float, ...]

    def dumps(self) -> bytes:
        return ",".join(repr(float(v)) for v in self.values).encode()

    @classmethod
    def loads(cls, raw: bytes | str, *, size: int) -> EntityStats | None:
        """None (unknown) for a malformed or wrongly sized entry, never an error."""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            return None
        return cls(values) if len(values) == size else None


LIST_ACTIONS: Final = ("block", "allow", "step_up")


@dataclass(frozen=True, slots=True)
class ListEntry:
    """A block / allow / step-up list entry of one entity (``{p}list:{kind}:{id}``, expiring at
    `expires_at`): the decision honours it on the next transaction (realtime.lists)."""

    kind: str
    id: str
    action: str  # block | allow | step_up
    reason: str
    by: str
    at: float
    expires_at: float
    case_id: str | None = None
    ring_id: str | None = None

    @property
    def list_name(self) -> str:
        return f"{self.action}_list"

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> ListEntry | None:
        """None for a malformed entry (the decision then ignores it), never an error."""
        try:
            e = cls(**orjson.loads(raw))
        except (ValueError, TypeError):
            return None
        texts = (e.kind, e.id, e.reason, e.by)
        ok = all(isinstance(v, str) for v in texts) and e.action in LIST_ACTIONS
        times = all(isinstance(v, int | float) for v in (e.at, e.expires_at))
        return e if ok and times else None


MERCHANT_STATS_SIZE: Final = 7
USER_STATS_SIZE: Final = 1

# -- bounds: every key family has a TTL or a size cap (one place; Lua and workers import these) --
#: cached graph risk: the nightly full rescore rewrites every ring's; older has aged out anyway
RISK_TTL_S: Final = 35 * 86_400
#: cached statistics: the refresh rewrites them every few minutes
STATS_TTL_S: Final = 2 * 86_400
#: velocity windows: minute buckets (1 h window), hour buckets (7 d for user and card, 24 h for
#: the others), seen sets (30 d), the user's last ts, day buckets (30 d) and spikes (14 d)
VEL_MIN_TTL_S: Final = 2 * 3600
VEL_HOUR_TTL_LONG_S: Final = 8 * 86_400
VEL_HOUR_TTL_SHORT_S: Final = 2 * 86_400
VEL_SEEN_TTL_S: Final = 31 * 86_400
VEL_SEEN_MAX: Final = 1000
VEL_LAST_TTL_S: Final = 90 * 86_400
VEL_DAY_TTL_S: Final = 32 * 86_400
VEL_SPIKE_TTL_S: Final = 15 * 86_400
#: alert dedupe markers
ALERT_DEDUPE_TTL_S: Final = 30 * 86_400
#: capped streams (approximate MAXLEN): a label backlog this long means the workers are down
STREAM_CAP: Final = 100_000
LABELS_STREAM_CAP: Final = 1_000_000
FRESHNESS_SAMPLES: Final = 20_000

#: family -> (where it lives, what bounds it); docs/scaling.md lists this table
KEY_BOUNDS: Final[dict[str, tuple[str, str]]] = {
    "risk:{kind:id}": ("state", f"TTL {RISK_TTL_S // 86_400} d; one per entity in a ring"),
    "stats:{kind:id}": ("state", f"TTL {STATS_TTL_S // 86_400} d; one per merchant and user"),
    "vel:{kind:id}:min": ("state", "60 buckets x 2 fields; TTL 2 h"),
    "vel:{kind:id}:hour": ("state", "168 buckets (user, card) or 24; TTL 8 d or 2 d"),
    "vel:{kind:id}:seen:{kind}": ("state", f"30 d and {VEL_SEEN_MAX} newest members; TTL 31 d"),
    "vel:{user:id}:last": ("state", "one timestamp; TTL 90 d"),
    "vel:{user:id}:day": ("state", "30 buckets x 2 fields; TTL 32 d"),
    "vel:{user:id}:spike": ("state", "the user's spikes of 14 days; TTL 15 d"),
    "decision:{txn_id}": (
        "main",
        "TTL: the idempotency retry window (pending: 1 h; a review: review_keep_s, 30 d)",
    ),
    "stream:decisions[:{n}]": (
        "main",
        "trimmed (XTRIM MINID) behind every consumer group and the graph's replay point",
    ),
    "stream:labels": ("main", f"MAXLEN ~{LABELS_STREAM_CAP:,}"),
    "stream:alerts": ("main", f"MAXLEN {STREAM_CAP:,}"),
    "deadletter": ("main", f"MAXLEN ~{STREAM_CAP:,}"),
    "meta:freshness": ("main", f"LTRIM to {FRESHNESS_SAMPLES:,} samples"),
    "meta:ring:{ring_id}": ("main", f"TTL {RISK_TTL_S // 86_400} d; deleted with its ring"),
    "meta:alerted:{key}": ("main", f"TTL {ALERT_DEDUPE_TTL_S // 86_400} d"),
    "meta:rescore": ("main", "set of users, popped by the workers (at most every user)"),
    "meta:rings:waiting / in_flight": (
        "main",
        "users waiting for the ring pass; every pass empties them",
    ),
    "meta:queued:* / lease:*": ("main", "TTL (a few lease periods)"),
    "meta:* (figures)": ("main", "a fixed set of single values (retrain, drift, stats_at, ...)"),
    "{queue} (Celery)": ("main", "drained by the workers; single-flight tasks, at most one waits"),
    "list:{kind}:{id}": ("main", "TTL: the entry's expiry, at most 366 d"),
    "lists": ("main", "one member per live list entry; the expired pruned when listed"),
    "stream:audit": ("main", "MAXLEN ~1,000,000"),
    "queue:review": ("main", "reviews leave when resolved; older than 30 d pruned when read"),
    "case:{id}, case:{id}:events, cases": (
        "main",
        "kept: a case is a record (a hash and a short stream each, made by hand)",
    ),
}


class Keys:
    """Builds keys for one prefix; cheap to create, hold one per process."""

    __slots__ = ("partitions", "prefix")

    def __init__(self, prefix: str, *, partitions: int = 1) -> None:
        self.prefix = prefix
        #: how many streams the decision stream is (`Settings.stream_partitions`)
        self.partitions = max(1, partitions)

    def risk(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}risk:{{{kind}:{entity_id}}}"

    def stats(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}stats:{{{kind}:{entity_id}}}"

    def velocity(self, kind: str, entity_id: str, window: str) -> str:
        return f"{self.prefix}vel:{{{kind}:{entity_id}}}:{window}"

    def decision(self, txn_id: str) -> str:
        return f"{self.prefix}decision:{txn_id}"

    @property
    def decisions_stream(self) -> str:
        """The first partition (the only one with the default of one)."""
        return f"{self.prefix}stream:decisions"

    def decisions_partition(self, partition: int) -> str:
        base = f"{self.prefix}stream:decisions"
        return base if partition == 0 else f"{base}:{partition}"

    @property
    def decision_streams(self) -> list[str]:
        """Every partition of the decision stream, in partition order."""
        return [self.decisions_partition(i) for i in range(self.partitions)]

    def partition_of(self, user_id: str) -> int:
        """A user's partition: stable across processes and restarts (CRC-32, not `hash`)."""
        if self.partitions == 1:
            return 0
        return zlib.crc32(user_id.encode()) % self.partitions

    def decisions_stream_for(self, user_id: str) -> str:
        return self.decisions_partition(self.partition_of(user_id))

    def partition_meta(self, name: str, partition: int) -> str:
        """A workers' value kept per partition (the first partition's is the plain name)."""
        return self.meta(name if partition == 0 else f"{name}:{partition}")

    @property
    def labels_stream(self) -> str:
        return f"{self.prefix}stream:labels"

    @property
    def alerts_stream(self) -> str:
        return f"{self.prefix}stream:alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}deadletter"

    def list_entry(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}list:{kind}:{entity_id}"

    @property
    def lists_index(self) -> str:
        return f"{self.prefix}lists"

    @property
    def audit_stream(self) -> str:
        return f"{self.prefix}stream:audit"

    def case(self, case_id: str) -> str:
        return f"{self.prefix}case:{case_id}"

    def case_events(self, case_id: str) -> str:
        return f"{self.prefix}case:{case_id}:events"

    @property
    def cases_index(self) -> str:
        return f"{self.prefix}cases"

    @property
    def review_queue(self) -> str:
        return f"{self.prefix}queue:review"

    def meta(self, name: str) -> str:
        """Small bookkeeping values (last retrain, freshness samples, drift figures)."""
        return f"{self.prefix}meta:{name}"
