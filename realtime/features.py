"""The model's feature vector (names and order: fraudring.contract.features) filled online.

The online engine fills the velocity part from one Lua call (realtime.velocity) and the graph part
from cached risk; the trainer reproduces the same values point-in-time, and a parity test compares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from fraudring.contract.features import (
    FEATURE_NAMES,
    GRAPH_FEATURES,
    INDEX,
    STATS_FEATURES,
    TABULAR_FEATURES,
    USER_WINDOW_FEATURES,
    VELOCITY_FEATURES,
)
from fraudring.contract.ids import ENTITY_KINDS
from realtime.keys import EntityStats, GraphRisk

__all__ = [
    "FEATURE_NAMES",
    "GRAPH_FEATURES",
    "INDEX",
    "STATS_FEATURES",
    "TABULAR_FEATURES",
    "USER_WINDOW_FEATURES",
    "VELOCITY_FEATURES",
]

#: A spike: an amount over this many times the user's median (gnn.entitystats.SPIKE_RATIO).
SPIKE_RATIO: Final = 3.0
NAN = float("nan")

Row = npt.NDArray[np.float32]


def request_features(*, amount: float, ts: float) -> list[float]:
    """The four features that need nothing but the request (all a degraded decision has)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return [amount, math.log1p(amount), float(dt.hour), float(dt.weekday())]


def graph_features(risks: Sequence[GraphRisk | None]) -> list[float]:
    """Per-entity scores in ENTITY_KINDS order, then the max ring size / fraud rate."""
    out = [NAN if r is None else float(r.score) for r in risks]
    known = [r for r in risks if r is not None]
    if known:
        out.append(float(max(r.ring_size for r in known)))
        out.append(float(max(r.ring_fraud_rate for r in known)))
    else:
        out.extend((NAN, NAN))
    return out


def stats_features(
    *,
    amount: float,
    ts: float,
    merchant: EntityStats | None,
    user: EntityStats | None,
    window: Sequence[float] | None,
) -> list[float]:
    """STATS_FEATURES: the merchant's cached rates and CPP figures, the age of its fraud spell
    at ``ts``, the user's median and the amount's ratio to it, then the user's windows (as
    `gnn.entitystats` offline)."""
    day = 86_400.0
    if merchant is None:
        out = [NAN] * 7
    else:
        r1, r7, r28, first, last, cpp, cpp_rate = merchant.values
        out = [r1, r7, r28, (ts - first) / day, (ts - last) / day, cpp, cpp_rate]
    median = NAN if user is None else user.values[0]
    out += [median, amount / median if median > 0 else NAN]
    out += window if window is not None else [NAN] * len(USER_WINDOW_FEATURES)
    return out


def assemble(
    *,
    amount: float,
    ts: float,
    velocity: Sequence[float] | None,
    risks: Sequence[GraphRisk | None],
    stats: tuple[EntityStats | None, EntityStats | None] = (None, None),
    user_window: Sequence[float] | None = None,
) -> Row:
    """One float32 row in FEATURE_NAMES order; velocity None (Redis down) gives NaN there.
    ``stats`` is the (merchant, user) cache entry, None where unknown."""
    values = request_features(amount=amount, ts=ts)
    values.extend(velocity if velocity is not None else [NAN] * len(VELOCITY_FEATURES))
    values.extend(graph_features(risks))
    values.extend(
        stats_features(amount=amount, ts=ts, merchant=stats[0], user=stats[1], window=user_window)
    )
    return np.asarray(values, dtype=np.float32).reshape(1, -1)


def as_dict(row: Row) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, (float(v) for v in row[0]), strict=True))


def ring_context(risks: Mapping[str, GraphRisk | None]) -> tuple[str, GraphRisk] | None:
    """The entity whose ring is the most fraudulent (then the largest), if any has a ring."""
    best: tuple[str, GraphRisk] | None = None
    for kind in ENTITY_KINDS:
        r = risks.get(kind)
        if r is None or not r.ring_id:
            continue
        if best is None or (r.ring_fraud_rate, r.ring_size) > (
            best[1].ring_fraud_rate,
            best[1].ring_size,
        ):
            best = (kind, r)
    return best
