"""Ring scores -> per-entity GraphRisk in Redis, in the layout the decision engine reads.

The promoted GCN scores rings when a live model has one (gnn.service); otherwise a documented
heuristic does (`heuristic_ring_score`), so a fresh deployment still warns about rings.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from fraudring.logs import get_logger
from graph.schemas import Ring
from realtime.keys import GraphRisk, Keys

log = get_logger(__name__)

FRESHNESS_SAMPLES = 20_000
#: Prior of the smoothed fraud rate: 0.5 fraud in 5 pseudo-labels (mean 0.1).
PRIOR_FRAUD, PRIOR_N = 0.5, 5.0


class RingScorer(Protocol):
    """Scores rings; returns ring id -> score in [0, 1] and the model version used (or None)."""

    def __call__(self, rings: Sequence[Ring]) -> tuple[dict[str, float], str | None]: ...


def heuristic_ring_score(ring: Ring) -> float:
    """Score of a ring without a GCN.

    0.6 x smoothed fraud rate of its members (prior 0.1 from 5 pseudo-labels, so one fraud in
    a pair is not certainty) + 0.25 x size factor (1 - exp(-(size - 1) / 5): larger rings are
    rarer among honest users) + 0.15 x link density. An unlabelled dense ring of 10 scores about
    0.45, a fully labelled one about 0.95.
    """
    rate = (ring.fraud_n + PRIOR_FRAUD) / (ring.size + PRIOR_N)
    size_factor = 1.0 - math.exp(-(max(ring.size, 1) - 1) / 5.0)
    density = min(max(ring.density, 0.0), 1.0)
    return round(min(1.0, 0.6 * rate + 0.25 * size_factor + 0.15 * density), 4)


def heuristic_scorer(rings: Sequence[Ring]) -> tuple[dict[str, float], str | None]:
    return {r.id: heuristic_ring_score(r) for r in rings}, None


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
    plan = RiskPlan()
    for ring in rings:
        risk = GraphRisk(
            score=float(scores.get(ring.id, ring.risk)),
            ring_id=ring.id,
            ring_size=ring.size,
            ring_fraud_rate=float(ring.fraud_rate),
            model_version=model_version,
            updated_at=now,
        )
        for user in ring.members:
            plan.add("user", user, risk)
        for ent in ring.shared_entities:
            plan.add(ent.kind, ent.id, risk)
    return plan


def write_risks(client: redis.Redis, keys: Keys, plan: RiskPlan) -> int:
    """One pipeline of SETs; returns how many keys were written."""
    if not plan.risks:
        return 0
    pipe = client.pipeline(transaction=False)
    for (kind, entity_id), risk in plan.risks.items():
        pipe.set(keys.risk(kind, entity_id), risk.dumps())
    pipe.execute()
    return len(plan.risks)


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


def load_ring_scorer(settings: Any) -> tuple[RingScorer, str]:
    """The live GCN's ring scorer when gnn provides one and a model is live, else the heuristic."""
    try:
        gnn_service = importlib.import_module("gnn.service")
    except ImportError:
        return heuristic_scorer, "heuristic (gnn.service not available)"
    make = getattr(gnn_service, "live_ring_scorer", None)
    if make is None:
        return heuristic_scorer, "heuristic (gnn.service has no live_ring_scorer)"
    scorer = make(settings=settings)
    if scorer is None:
        return heuristic_scorer, "heuristic (no live GCN)"
    return scorer, "gcn"
