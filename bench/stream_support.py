"""Helpers of `bench.stream`: the world as API requests, and what it checks around a run (loss
and double counts in the graph, and whether the next decision of a new account already sees the
fraud ring it just touched)."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from bench import BenchError
from fraudring.settings import Settings
from realtime.keys import Keys


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def world_requests(world_dir: Path) -> list[dict[str, Any]]:
    from world.io import read_world

    out = []
    for row in read_world(world_dir).transactions.to_pylist():
        out.append(
            {
                "txn_id": row["txn_id"],
                "ts": iso(row["ts"].timestamp()),
                **{k: row[k] for k in ("user_id", "card_id", "device_id", "ip", "merchant_id")},
                "amount": float(row["amount"]),
                "currency": row["currency"],
            }
        )
    return out


def wait(cond: Any, *, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def check_graph(settings: Settings, txns: list[dict[str, Any]]) -> tuple[int, int]:
    """(lost, double_counted): re-ingest finds the missing; users' counts find the doubles."""
    from graph.schemas import TxnRecord
    from graph.service import open_store

    assert settings.graph_url is not None
    records = [
        TxnRecord(
            txn_id=t["txn_id"],
            ts=datetime.fromisoformat(t["ts"]).timestamp(),
            user_id=t["user_id"],
            card_id=t["card_id"],
            device_id=t["device_id"],
            ip=t["ip"],
            merchant_id=t["merchant_id"],
            amount=t["amount"],
        )
        for t in txns
    ]
    with open_store(settings.graph_url, settings=settings) as store:
        lost = sum(
            store.ingest(records[i : i + 5000]).ingested for i in range(0, len(records), 5000)
        )
        exp = store.export()
        users = exp.kind == 0
        counted = int(np.rint(np.expm1(exp.x[users, 6].astype(np.float64))).sum())
    return lost, counted - len({t["txn_id"] for t in txns})


def ring_end_to_end(
    *,
    base: str,
    key: str,
    settings: Settings,
    last_ts: float,
    client: redis.Redis,
    keys: Keys,
    sent: list[dict[str, Any]],
) -> dict[str, Any]:
    from graph.service import open_store

    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        rings = [r for r in store.top_rings(200) if r.fraud_n > 0]
        # A device links from the first use (graph.rings); an IP only the users based there, a
        # card only from three users. Among devices, the one most members share.
        rank = {"device": 2, "card": 1}
        best: tuple[tuple[int, int], Any, Any] | None = None
        for r in rings[:20]:
            for e in r.shared_entities:
                if e.kind not in rank:
                    continue
                hood = store.neighbourhood(e.kind, e.id, hops=1, max_nodes=100)
                users = sum(1 for node in hood.nodes if node.kind == "user")
                if best is None or (rank[e.kind], users) > best[0]:
                    best = ((rank[e.kind], users), r, e)
    if best is None:
        return {"ring_seen_by_next_decision": "no labelled ring found"}
    _, ring, ent = best
    field = {"device": "device_id", "card": "card_id"}[ent.kind]
    user = f"newacct-{secrets.token_hex(3)}"
    first = {
        "txn_id": f"{user}-1", "ts": iso(last_ts + 60), "user_id": user, "card_id": f"{user}-card",
        "device_id": f"{user}-dev", "ip": "198.51.100.7", "merchant_id": "m-new", "amount": 40.0,
        "currency": "EUR",
    }  # fmt: skip
    first[field] = ent.id
    second = {**first, "txn_id": f"{user}-2", "ts": iso(last_ts + 120), "card_id": f"{user}-card",
              "device_id": f"{user}-dev", "ip": "198.51.100.7"}  # fmt: skip
    h = {"X-API-Key": key}
    r1 = httpx.post(f"{base}/v1/decisions", json=first, headers=h, timeout=10).json()
    t1 = time.monotonic()
    try:
        visible = wait(
            lambda: client.get(keys.risk("user", user)) is not None,
            timeout=30,
            what="the new account's risk",
        )
    except RuntimeError:
        visible = float("nan")  # the second decision then shows whether the ring is seen

    r2 = httpx.post(f"{base}/v1/decisions", json=second, headers=h, timeout=10).json()
    ring2 = (r2.get("explanation") or {}).get("ring") or {}
    ring1 = json.dumps((r1.get("explanation") or {}).get("ring"))
    print(f"  ring {ring.id} (size {ring.size}, fraud rate {ring.fraud_rate:.2f}),")
    print(f"  joined by new account {user} through {ent.kind} {ent.id}")
    print(f"  first decision: {r1.get('decision')} ring={ring1}")
    later = time.monotonic() - t1
    print(f"  next decision ({later:.2f} s later): {r2.get('decision')} ring={json.dumps(ring2)}")
    sent.extend([first, second])
    return {
        "ring_seen_by_next_decision": int(ring2.get("ring_id") == ring.id),
        "ring_link_visible_s": round(visible, 3),
        "ring_next_decision": str(r2.get("decision")),
    }
