"""The model's feature vector: fixed names and order, shared with the offline trainer.

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

from realtime.keys import ENTITY_KINDS, EntityStats, GraphRisk

TABULAR_FEATURES: Final[tuple[str, ...]] = (
    "amount", "log_amount", "hour", "weekday",
    "user_n_1h", "user_n_24h", "user_n_7d", "user_amt_1h", "user_amt_24h", "user_amt_7d",
    "card_n_1h", "card_n_24h", "card_n_7d", "card_amt_24h",
    "device_n_1h", "device_n_24h", "device_amt_24h",
    "ip_n_1h", "ip_n_24h", "ip_amt_24h",
    "merchant_n_1h", "merchant_n_24h",
    "user_devices_7d", "user_cards_7d", "user_ips_7d",
    "device_users_7d", "ip_users_7d", "card_users_7d",
    "user_secs_since_last", "user_new_device", "user_new_card", "user_new_ip",
)  # fmt: skip
GRAPH_FEATURES: Final[tuple[str, ...]] = (
    "user_risk", "card_risk", "device_risk", "ip_risk", "merchant_risk",
    "ring_size", "ring_fraud_rate",
)  # fmt: skip
#: From the workers' cached statistics (realtime.keys.EntityStats; ages and the ratio use the
#: request's own ts and amount), and the user's 30-day and spike windows (the velocity script).
STATS_FEATURES: Final[tuple[str, ...]] = (
    "merchant_fraud_rate_1d", "merchant_fraud_rate_7d", "merchant_fraud_rate_28d",
    "merchant_fraud_first_age_days", "merchant_fraud_last_age_days",
    "merchant_cpp_frauds_28d", "merchant_cpp_rate_28d",
    "user_median_amount_30d", "amount_to_user_median",
    "user_n_30d", "user_mean_amount_30d", "user_spikes_7d", "user_spikes_14d",
)  # fmt: skip
#: The last four, from the velocity script (the user's calendar days and spikes).
USER_WINDOW_FEATURES: Final[tuple[str, ...]] = STATS_FEATURES[-4:]
#: A spike: an amount over this many times the user's median (gnn.entitystats.SPIKE_RATIO).
SPIKE_RATIO: Final = 3.0
FEATURE_NAMES: Final[tuple[str, ...]] = TABULAR_FEATURES + GRAPH_FEATURES + STATS_FEATURES
#: What the velocity Lua script returns, in this order (everything after the request's own four).
VELOCITY_FEATURES: Final[tuple[str, ...]] = TABULAR_FEATURES[4:]
INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURE_NAMES)}
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
