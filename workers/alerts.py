"""Alerts for case tools: `{p}stream:alerts` (field ``d``) and, optionally, a webhook.

Each alert is published once: a redelivered batch finds its dedupe key and stays quiet. The
webhook POST runs as its own task (``fraudring.alerts.webhook``) so a slow or dead receiver
retries with backoff and never holds up ingest. Each POST is signed with an HMAC of its body
and time under the shared `alert_webhook_secret`, so the receiver can refuse forged or replayed
alerts (`verify`; the payload and the header are described in docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson
import redis

from fraudring.contract.transaction import DecisionRecord
from fraudring.errors import NotFound
from fraudring.logs import get_logger
from fraudring.settings import Settings
from graph.schemas import Ring, RingUpdate
from realtime.keys import ALERT_DEDUPE_TTL_S, STREAM_CAP, Keys
from workers.schemas import Alert, AlertKind, Severity

log = get_logger(__name__)
SIGNATURE_HEADER = "X-Fraudring-Signature"
ALERT_ID_HEADER = "X-Fraudring-Alert-Id"
#: A signature older (or newer) than this is refused: a captured POST cannot be replayed later.
SIGNATURE_TOLERANCE_S = 300
EVIDENCE_LIMIT = 25
#: A household sharing a router is a ring too; news are suspicious rings (graph.rings: grown
#: from labels on evidence) and rings scoring at least this.
NEW_RING_MIN_SCORE = 0.4


def publish(
    client: redis.Redis,
    keys: Keys,
    *,
    kind: AlertKind,
    severity: Severity,
    ring_id: str | None,
    evidence: Mapping[str, Any],
    dedupe: str,
) -> str | None:
    """XADD the alert unless one with the same dedupe key was published; returns its id."""
    if not client.set(keys.meta(f"alerted:{dedupe}"), b"1", nx=True, ex=ALERT_DEDUPE_TTL_S):
        return None
    alert = Alert(
        kind=kind, severity=severity, ring_id=ring_id, evidence=dict(evidence), at=time.time()
    )
    body = orjson.dumps(alert.model_dump(exclude={"id"}))
    raw_id = client.xadd(keys.alerts_stream, {"d": body}, maxlen=STREAM_CAP)
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
    alert = Alert.model_validate({**orjson.loads(fields[b"d"]), "id": alert_id})
    body = orjson.dumps(alert.model_dump())
    secret = settings.alert_webhook_secret.get_secret_value().encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, at=int(time.time())),
        ALERT_ID_HEADER: alert_id,
    }
    resp = httpx.post(settings.alert_webhook_url, content=body, headers=headers, timeout=3.0)
    resp.raise_for_status()
    return resp.status_code


def sign(secret: bytes, body: bytes, *, at: int) -> str:
    """The signature header's value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``.
    The time is inside the MAC so it cannot be changed to replay an old POST."""
    mac = hmac.new(secret, str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver checks: the header signs exactly this body, recently, with our secret."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - at) > tolerance_s:
        return False
    expected = sign(secret, body, at=at).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))
