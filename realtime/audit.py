"""The audit trail: who did what, when and why, in ``{p}stream:audit`` (labels, list changes,
case changes). `who` is the API key's name; the stream is capped, not trimmed by age."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio
from pydantic import BaseModel

from realtime.keys import Keys

#: Entries kept (approximately): years of an investigation team's clicks.
AUDIT_MAXLEN = 1_000_000


class AuditEvent(BaseModel):
    id: str
    who: str
    what: str
    why: str
    target: str
    at: float
    detail: dict[str, Any]


async def audit(
    client: redis.asyncio.Redis,
    keys: Keys,
    *,
    who: str,
    what: str,
    why: str,
    target: str,
    detail: dict[str, Any],
) -> str:
    body: dict[str | bytes, str | bytes | float] = {
        "who": who,
        "what": what,
        "why": why,
        "target": target,
        "at": time.time(),
        "detail": orjson.dumps(detail),
    }
    sid = await client.xadd(
        keys.audit_stream,
        body,  # type: ignore[arg-type]
        maxlen=AUDIT_MAXLEN,
        approximate=True,
    )
    return sid.decode() if isinstance(sid, bytes) else str(sid)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def recent(
    client: redis.asyncio.Redis, keys: Keys, *, count: int = 100, target: str | None = None
) -> list[AuditEvent]:
    """Newest first; `target` keeps the events whose target names it."""
    rows: list[Any] = await client.xrevrange(  # type: ignore[assignment]
        keys.audit_stream, count=count if target is None else 10_000
    )
    out = []
    for sid, f in rows:
        d = {_s(k): _s(v) for k, v in dict(f).items()}
        if target is not None and target not in d.get("target", "").split(","):
            continue
        out.append(
            AuditEvent(
                id=_s(sid),
                who=d.get("who", ""),
                what=d.get("what", ""),
                why=d.get("why", ""),
                target=d.get("target", ""),
                at=float(d.get("at", 0)),
                detail=orjson.loads(d.get("detail", "{}")),
            )
        )
    return out[:count]
