"""Alerts for case tools: `{p}stream:alerts` (field ``d``) and, optionally, a webhook.

Each alert is published once: a redelivered batch finds its dedupe key and stays quiet. The
webhook POST runs as its own task (``fraudring.alerts.webhook``) so a slow or dead receiver
retries with backoff and never holds up ingest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
import orjson
import redis

from fraudring.contract.transaction import DecisionRecord
from fraudring.errors import NotFound
from fraudring.logs import get_logger
from fraudring.settings import Settings
from graph.schemas import Ring, RingUpdate
from realtime.keys import Keys

log = get_logger(__name__)
Severity = Literal["low", "medium", "high"]
DEDUPE_TTL_S = 30 * 86400
EVIDENCE_LIMIT = 25
#: A household sharing a router is a ring too; news are suspicious rings (graph.rings: bigger
#: than a household or with a fraud member) and rings scoring at least this.
NEW_RING_MIN_SCORE = 0.4


def publish(
    client: redis.Redis,
    keys: Keys,
    *,
    kind: str,
    severity: Severity,
    ring_id: str | None,
    evidence: Mapping[str, Any],
    dedupe: str,
) -> str | None:
    """XADD the alert unless one with the same dedupe key was published; returns its id."""
    if not client.set(keys.meta(f"alerted:{dedupe}"), b"1", nx=True, ex=DEDUPE_TTL_S):
        return None
    body = {
        "kind": kind,
        "severity": severity,
        "ring_id": ring_id,
        "evidence": dict(evidence),
        "at": time.time(),
    }
    raw_id = client.xadd(keys.alerts_stream, {"d": orjson.dumps(body)}, maxlen=100_000)
    alert_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    log.info("alert.published", kind=kind, severity=severity, ring_id=ring_id, id=alert_id)
    return alert_id


def decision_alerts(
    client: redis.Redis, keys: Keys, settings: Settings, decisions: Sequence[DecisionRecord]
) -> list[str]:
    out = []
    for d in decisions:
        high = d.decision == "decline" or (d.score is not None and d.score >= settings.alert_score)
        if not high:
            continue
        alert_id = publish(
            client,
            keys,
            kind="high_risk_decision",
            severity="high" if d.decision == "decline" else "medium",
            ring_id=None,
            evidence={
                "txn_id": d.txn.txn_id,
                "user_id": d.txn.user_id,
                "decision": d.decision,
                "score": d.score,
                "amount": d.txn.amount,
                "model_version": d.model_version,
            },
            dedupe=f"decision:{d.txn.txn_id}",
        )
        if alert_id:
            out.append(alert_id)
    return out


def _ring_evidence(ring: Ring, score: float) -> dict[str, Any]:
    return {
        "size": ring.size,
        "score": score,
        "fraud_rate": ring.fraud_rate,
        "density": ring.density,
        "members": ring.members[:EVIDENCE_LIMIT],
        "shared_entities": [f"{e.kind}:{e.id}" for e in ring.shared_entities[:EVIDENCE_LIMIT]],
        "amount": ring.amount,
    }


def _severity(score: float) -> Severity:
    return "high" if score >= 0.7 else "medium" if score >= 0.4 else "low"


def ring_alerts(
    client: redis.Redis,
    keys: Keys,
    settings: Settings,
    *,
    update: RingUpdate,
    scores: Mapping[str, float],
) -> list[str]:
    """A new suspicious ring (or one scoring NEW_RING_MIN_SCORE), and a ring reaching
    `alert_ring_size` members (once per ring each)."""
    created = set(update.created)
    out = []
    for ring in update.rings:
        score = float(scores.get(ring.id, ring.risk))
        if ring.id in created and (ring.suspicious or score >= NEW_RING_MIN_SCORE):
            alert_id = publish(
                client,
                keys,
                kind="new_ring",
                severity=_severity(score),
                ring_id=ring.id,
                evidence=_ring_evidence(ring, score),
                dedupe=f"ring_new:{ring.id}",
            )
            if alert_id:
                out.append(alert_id)
        if ring.size >= settings.alert_ring_size:
            alert_id = publish(
                client,
                keys,
                kind="ring_grown",
                severity="high",
                ring_id=ring.id,
                evidence={**_ring_evidence(ring, score), "threshold": settings.alert_ring_size},
                dedupe=f"ring_size:{ring.id}",
            )
            if alert_id:
                out.append(alert_id)
    return out


def post_webhook(client: redis.Redis, keys: Keys, settings: Settings, alert_id: str) -> int:
    """POST one alert to the webhook; raises on failure so the task retries with backoff."""
    if not settings.alert_webhook_url:
        return 0
    entries = client.xrange(keys.alerts_stream, min=alert_id, max=alert_id)
    if not entries:
        raise NotFound(f"alert {alert_id} is no longer in the alerts stream")
    fields = entries[0][1] or {}
    body = orjson.loads(fields[b"d"])
    body["id"] = alert_id
    resp = httpx.post(settings.alert_webhook_url, json=body, timeout=3.0)
    resp.raise_for_status()
    return resp.status_code
