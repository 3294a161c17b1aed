"""The Redis key layout shared by the API (reads, writes velocity) and the workers (write risk).

Every key starts with the settings' ``redis_prefix`` (``fraudring:`` by default). Entity kinds are
``user``, ``card``, ``device``, ``ip``, ``merchant``.

- ``{p}risk:{kind}:{id}``: string, JSON of `GraphRisk` (written by workers, read with one MGET).
- ``{p}stats:{kind}:{id}``: string, `EntityStats.dumps` of a merchant or user (written by the
  workers' statistics refresh, read in the decision's Lua call).
- ``{p}vel:{kind}:{id}:{window}``: velocity state per entity (owned by realtime.velocity).
- ``{p}decision:{txn_id}``: the idempotency record (realtime.idempotency; TTL the setting
  ``idempotency_ttl_s``, 48 h by default).
- ``{p}stream:decisions``: Redis stream the API appends each decision to; field ``d`` holds the
  JSON of the decision record. Workers read it with consumer group ``ingest``.
- ``{p}stream:labels``: labels posted through the API or imported, field ``d`` JSON.
- ``{p}stream:alerts``: alerts for case tools (field ``d`` JSON).
- ``{p}deadletter``: stream of messages or tasks that kept failing, with their reason.
"""

from __future__ import annotations

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


MERCHANT_STATS_SIZE: Final = 7
USER_STATS_SIZE: Final = 1


class Keys:
    """Builds keys for one prefix; cheap to create, hold one per process."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def risk(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}risk:{kind}:{entity_id}"

    def stats(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}stats:{kind}:{entity_id}"

    def velocity(self, kind: str, entity_id: str, window: str) -> str:
        return f"{self.prefix}vel:{kind}:{entity_id}:{window}"

    def decision(self, txn_id: str) -> str:
        return f"{self.prefix}decision:{txn_id}"

    @property
    def decisions_stream(self) -> str:
        return f"{self.prefix}stream:decisions"

    @property
    def labels_stream(self) -> str:
        return f"{self.prefix}stream:labels"

    @property
    def alerts_stream(self) -> str:
        return f"{self.prefix}stream:alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}deadletter"

    def meta(self, name: str) -> str:
        """Small bookkeeping values (last retrain, freshness samples, drift figures)."""
        return f"{self.prefix}meta:{name}"
