"""Ring scores -> per-entity GraphRisk in Redis, in the layout the decision engine reads.

The promoted GCN scores rings when a live model has one (gnn.service); otherwise the graph's
documented ring risk does (`heuristic_scorer`), so a fresh deployment still warns about rings.
The GCN's score drives alerts and rides along in each GraphRisk (`gcn_score`); the decision's
features read the graph's ring risk (`GraphRisk.score`), which is what the model was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from fraudring.errors import FraudringError
from fraudring.logs import get_logger
from graph.schemas import Ring
from realtime.keys import FRESHNESS_SAMPLES, RISK_TTL_S, GraphRisk, Keys

log = get_logger(__name__)


class RingScorer(Protocol):
    """Scores rings; returns ring id -> score in [0, 1] and the model version used (or None)."""

    def __call__(self, rings: Sequence[Ring]) -> tuple[dict[str, float], str | None]: ...


def heuristic_scorer(rings: Sequence[Ring]) -> tuple[dict[str, float], str | None]:
    """Without a live GCN: the graph's own ring risk (graph.rings documents it: labelled fraud
    rate 0.55, size 0.20, link density 0.15, account youth 0.10, times recency)."""
    return {r.id: float(r.risk) for r in rings}, None


@dataclass
class RiskPlan:
    """The GraphRisk of every entity of the scored rings (an entity in two rings: the riskier)."""

    risks: dict[tuple[str, str], GraphRisk] = field(default_factory=dict)

    def add(self, kind: str, entity_id: str, risk: GraphRisk) -> None:
        cur = self.risks.get((kind, entity_id))
        if cur is None or risk.score > cur.score:
            self.risks[(kind, entity_id)] = risk


def plan_risks(
    rings: Iterable[Ring], scores: Mapping[str, float], *, model_version: str | None, now: float
) -> RiskPlan:
    """Every member's and shared entity's GraphRisk. Its `score` is the graph's ring risk even
    when a GCN scored the rings (`model_version` set): training reproduces that one
    (`gnn.ringrisk`), and a model fed a score it never saw in training flags what it should not
    (docs/learning.md). The GCN's goes to `gcn_score`."""
    plan = RiskPlan()
    for ring in rings:
        gcn = scores.get(ring.id) if model_version is not None else None
        risk = GraphRisk(
            score=float(ring.risk),
            ring_id=ring.id,
            ring_size=ring.size,
            ring_fraud_rate=float(ring.fraud_rate),
            model_version=model_version,
            updated_at=now,
            gcn_score=None if gcn is None else float(gcn),
        )
        for user in ring.members:
            plan.add("user", user, risk)
        for ent in ring.shared_entities:
            plan.add(ent.kind, ent.id, risk)
    return plan


def write_risks(
    client: redis.Redis,
    keys: Keys,
    plan: RiskPlan,
    *,
    state: redis.Redis | redis.RedisCluster | None = None,
) -> int:
    """One pipeline of SETs on `state` (a cluster's pipeline splits per node), each ring's
    entity index on `client`; returns how many keys were written.

    Risks expire after RISK_TTL_S: the nightly full rescore rewrites every ring's, and a ring
    untouched that long has aged out of the ring window anyway.
    """
    if not plan.risks:
        return 0
    pipe = (state or client).pipeline(transaction=False)
    dumped: dict[int, bytes] = {}  # the members of a ring share one GraphRisk: serialise once
    index: dict[str, list[str]] = {}
    for (kind, entity_id), risk in plan.risks.items():
        raw = dumped.get(id(risk))
        if raw is None:
            raw = dumped[id(risk)] = risk.dumps()
        pipe.set(keys.risk(kind, entity_id), raw, ex=RISK_TTL_S)
        if risk.ring_id is not None:
            index.setdefault(risk.ring_id, []).append(f"{kind}:{entity_id}")
    pipe.execute()
    pipe = client.pipeline(transaction=False)
    for ring_id, refs in index.items():
        pipe.sadd(keys.meta(f"ring:{ring_id}"), *refs)
        pipe.expire(keys.meta(f"ring:{ring_id}"), RISK_TTL_S)
    pipe.execute()
    return len(plan.risks)


def clear_removed(
    client: redis.Redis,
    keys: Keys,
    ring_ids: Sequence[str],
    *,
    state: redis.Redis | redis.RedisCluster | None = None,
) -> int:
    """Delete the risk (on `state`, else `client`) of entities whose cached ring no longer
    exists; returns how many."""
    store = state or client
    cleared = 0
    for ring_id in ring_ids:
        index = keys.meta(f"ring:{ring_id}")
        refs = [r.decode() if isinstance(r, bytes) else str(r) for r in client.smembers(index)]
        risk_keys = [keys.risk(*ref.split(":", 1)) for ref in refs]
        stale = [
            k
            for k, raw in zip(risk_keys, _mget(store, risk_keys), strict=True)
            if raw is not None and GraphRisk.loads(raw).ring_id == ring_id
        ]
        if stale:
            cleared += int(store.delete(*stale))
        client.delete(index)
    return cleared


def _mget(client: redis.Redis | redis.RedisCluster, keys: list[str]) -> list[Any]:
    """MGET, split per slot on a cluster (its keys span slots)."""
    if not keys:
        return []
    if isinstance(client, redis.RedisCluster):
        return list(client.mget_nonatomic(keys))
    return list(client.mget(keys))


def record_freshness(client: redis.Redis, keys: Keys, decided_at: Sequence[float]) -> None:
    """Seconds from each decision to the refresh of its neighbourhood, newest first, capped."""
    if not decided_at:
        return
    now = time.time()
    samples = [f"{max(0.0, now - t):.4f}" for t in decided_at]
    pipe = client.pipeline(transaction=False)
    pipe.lpush(keys.meta("freshness"), *samples)
    pipe.ltrim(keys.meta("freshness"), 0, FRESHNESS_SAMPLES - 1)
    pipe.execute()


def load_ring_scorer(settings: Any, *, store: Any = None) -> tuple[RingScorer, str]:
    """The live GCN's ring scorer (its member risks refreshed from `store`'s export) when the
    live model has a GCN, else the graph's ring risk; the second value says which and why."""
    from gnn.service import live_ring_scorer  # torch: loaded when a scorer is (re)loaded

    try:
        scorer = live_ring_scorer(settings=settings, store=store)
    except FraudringError as exc:  # e.g. a live GCN trained on other node features
        log.error("score.gcn_unusable", error=exc.message)
        return heuristic_scorer, f"heuristic (live GCN unusable: {exc.message})"
    if scorer is None:
        return heuristic_scorer, "heuristic (no live GCN)"
    return scorer, f"gcn {getattr(scorer, 'version', '?')}"
