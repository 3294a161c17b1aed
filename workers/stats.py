"""The merchant and user statistics the decisions read (STATS_FEATURES), refreshed from the ledger.

Every refresh reads the graph's ledger of the last ``label delay + 60`` days (transactions with
their labels and when each arrived), runs `gnn.entitystats.current_stats` at the stream's clock
(the newest transaction, which is "now" in production and the replayed time in a demo) and writes
one `realtime.keys.EntityStats` per merchant and user. Training takes the same function at its
moments (`gnn.pit`), so the served values are the trained ones, only fresher.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from fraudring.logs import get_logger
from fraudring.registry import ModelRegistry
from fraudring.settings import Settings
from gnn.entitystats import CPP_LOOKBACK_DAYS, current_stats
from graph.repository import GraphStore
from realtime.keys import STATS_TTL_S, EntityStats, Keys

log = get_logger(__name__)
#: An entry outlives a stopped refresher by this much, then reads as unknown.
DAY_S = 86_400.0


def label_delay_days(settings: Settings) -> float:
    """The live model's label delay (what its statistics were trained with), else the setting."""
    registry = ModelRegistry(settings.models_path)
    live = registry.live_version()
    value = registry.manifest(live).get("label_delay_days") if live else None
    return float(value) if value is not None else settings.label_delay_days


def refresh_stats(
    client: redis.Redis,
    keys: Keys,
    store: GraphStore,
    *,
    label_delay_days: float,
    state: redis.Redis | redis.RedisCluster | None = None,
) -> dict[str, Any]:
    """Recompute and cache every merchant's and user's statistics; returns what it wrote."""
    t0 = time.perf_counter()
    newest = store.newest_ts()
    if newest is None:
        return {"merchants": 0, "users": 0, "rows": 0, "seconds": 0.0}
    at = newest + 1e-6  # strictly after the newest transaction, as a training moment
    ledger = store.ledger_since(since=at - (label_delay_days + CPP_LOOKBACK_DAYS) * DAY_S)
    stats = current_stats(ledger.to_pandas(), at=at, label_delay_days=label_delay_days)
    pipe = (state or client).pipeline(transaction=False)
    for kind, entries in (
        ("merchant", {k: EntityStats(v) for k, v in stats.merchants.items()}),
        ("user", {k: EntityStats((v,)) for k, v in stats.users.items()}),
    ):
        for entity_id, entry in entries.items():
            pipe.set(keys.stats(kind, entity_id), entry.dumps(), ex=STATS_TTL_S)
    pipe.execute()
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.meta("stats_at"), repr(at))
    pipe.incr(keys.meta("stats_refreshes"))
    pipe.execute()
    out = {
        "merchants": len(stats.merchants),
        "users": len(stats.users),
        "rows": ledger.height,
        "at": at,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("stats.refreshed", **out)
    return out
