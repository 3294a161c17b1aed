"""Read-only figures of the asynchronous pipeline, from Redis alone.

The CLI (`fraudring status`, `fraudring deadletter`) and the API's /metrics call these; neither
may import the workers, and nothing here needs Celery, the graph or torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import redis

from fraudring import streamids
from realtime.keys import DECISION_GROUP, Keys

QUEUES = ("ingest", "score", "train")


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix` (a test's, a benchmark's or the demo's namespace)."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    return len(keys)


def freshness_stats(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """p50 / p95 / max seconds from decision to refreshed ring risk, over recent decisions."""
    raw = client.lrange(keys.meta("freshness"), 0, -1)
    if not raw:
        return {"n": 0, "p50_s": float("nan"), "p95_s": float("nan"), "max_s": float("nan")}
    arr = np.array([float(v) for v in raw], dtype=np.float64)
    return {
        "n": int(arr.size),
        "p50_s": float(np.percentile(arr, 50)),
        "p95_s": float(np.percentile(arr, 95)),
        "max_s": float(arr.max()),
    }


def stream_lag(client: redis.Redis, stream: str, group: str) -> dict[str, int]:
    """Pending (delivered, not acknowledged) and undelivered messages of a consumer group."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet
        return {"length": 0, "pending": 0, "undelivered": 0, "consumers": 0}
    length = int(client.xlen(stream))
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            lag = g.get("lag")
            return {
                "length": length,
                "pending": int(g["pending"]),
                "undelivered": int(lag) if lag is not None else length,
                "consumers": int(g["consumers"]),
            }
    return {"length": length, "pending": 0, "undelivered": length, "consumers": 0}


def frontiers(client: redis.Redis, stream: str) -> dict[str, str]:
    """Per consumer group, the first entry it has not acknowledged: its oldest pending entry,
    else the one after the last delivered. Read in one transaction, so an entry delivered
    between the two reads cannot be counted as acknowledged."""
    try:
        names = [_text(g["name"]) for g in client.xinfo_groups(stream)]
    except redis.ResponseError:  # no stream yet
        return {}
    pipe = client.pipeline(transaction=True)
    pipe.xinfo_groups(stream)
    for name in names:
        pipe.xpending(stream, name)
    groups, *pending = pipe.execute()
    delivered = {_text(g["name"]): _text(g["last-delivered-id"]) for g in groups}
    return {
        name: _text(p["min"]) if p["pending"] else streamids.after(delivered[name])
        for name, p in zip(names, pending, strict=True)
        if name in delivered
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decision_lag(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """The decision stream's lag, summed over its partitions (`consumers`: the most on one)."""
    total = {"length": 0, "pending": 0, "undelivered": 0, "consumers": 0}
    for stream in keys.decision_streams:
        lag = stream_lag(client, stream, DECISION_GROUP)
        for name in ("length", "pending", "undelivered"):
            total[name] += lag[name]
        total["consumers"] = max(total["consumers"], lag["consumers"])
    return total


def queue_lengths(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """Celery messages waiting per queue (the broker's lists carry the same prefix)."""
    return {q: int(client.llen(f"{keys.prefix}{q}")) for q in QUEUES}


def read_json(client: redis.Redis, key: str) -> dict[str, Any] | None:
    raw = client.get(key)
    return None if raw is None else dict(orjson.loads(raw))


def last_retrain(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    return read_json(client, keys.meta("retrain:last"))


def drift(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    """The last drift check: PSI per feature, score PSI, label recall/precision, breached."""
    return read_json(client, keys.meta("drift:last"))


def deadletters(client: redis.Redis, keys: Keys, *, count: int = 20) -> list[dict[str, Any]]:
    """Newest first; each entry is the record plus its stream id."""
    out = []
    for raw_id, fields in client.xrevrange(keys.deadletter, count=count) or []:
        body = orjson.loads((fields or {}).get(b"d", b"{}"))
        body["id"] = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        out.append(body)
    return out


def metrics(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """Flat gauges for Prometheus (name -> value), NaN where nothing was measured yet."""
    fresh = freshness_stats(client, keys)
    lag = decision_lag(client, keys)
    out: dict[str, float] = {
        "fraudring_freshness_p50_seconds": fresh["p50_s"],
        "fraudring_freshness_p95_seconds": fresh["p95_s"],
        "fraudring_decision_stream_pending": float(lag["pending"]),
        "fraudring_decision_stream_undelivered": float(lag["undelivered"]),
        "fraudring_deadletter_total": float(client.xlen(keys.deadletter)),
    }
    for q, n in queue_lengths(client, keys).items():
        out[f"fraudring_queue_length_{q}"] = float(n)
    d = drift(client, keys) or {}
    out["fraudring_drift_score_psi"] = _num(d.get("score_psi"))
    out["fraudring_drift_max_feature_psi"] = _num(d.get("max_feature_psi"))
    out["fraudring_drift_recall"] = _num(d.get("recall"))
    out["fraudring_drift_breached"] = float(bool(d.get("breached", False)))
    r = last_retrain(client, keys) or {}
    out["fraudring_last_retrain_timestamp"] = _num(r.get("finished_at"))
    return out


def _num(value: Any) -> float:
    """JSON null (orjson writes NaN as null) and absent values are NaN for a gauge."""
    return float("nan") if value is None else float(value)


def replay_gap(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    """Decision-stream entries the graph needed but the stream no longer held (workers.replay),
    until an operator accepts the gap (`fraudring status --accept-gap`)."""
    return read_json(client, keys.meta("replay_gap"))
