"""Cases: a ring or an entity under investigation, with status, assignee, notes, disposition,
and the history of everything done in it (who, when, why), durably in Redis.

A case is a hash ``{p}case:{id}``; its history is the stream ``{p}case:{id}:events``; the
index ``{p}cases`` (ids by creation time) serves listing and filtering. Every change is also
written to the audit stream. Ids are ``case-<n>`` from a counter, so they read well on a call.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
import redis.asyncio
from pydantic import BaseModel, Field

from fraudring.errors import Conflict, InvalidInput, NotFound
from realtime.audit import audit
from realtime.keys import Keys

Status = Literal["open", "investigating", "closed"]
Disposition = Literal["fraud_confirmed", "legitimate", "inconclusive"]
SubjectKind = Literal["ring", "user", "card", "device", "ip", "merchant"]
STATUSES: tuple[str, ...] = ("open", "investigating", "closed")


class CaseEvent(BaseModel):
    id: str
    type: str = Field(description="opened, status, assignee, disposition, note, label, action")
    who: str
    at: float
    why: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Case(BaseModel):
    id: str
    subject_kind: SubjectKind
    subject_id: str
    title: str
    status: Status
    assignee: str | None
    disposition: Disposition | None
    created_by: str
    created_at: float
    updated_at: float
    events: list[CaseEvent] = Field(default_factory=list)


class CasesPage(BaseModel):
    cases: list[Case]
    total: int


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _case(case_id: str, h: dict[Any, Any]) -> Case:
    d = {_s(k): _s(v) for k, v in h.items()}
    return Case(
        id=case_id,
        subject_kind=d["subject_kind"],
        subject_id=d["subject_id"],
        title=d.get("title", ""),
        status=d["status"],
        assignee=d.get("assignee") or None,
        disposition=d.get("disposition") or None,
        created_by=d["created_by"],
        created_at=float(d["created_at"]),
        updated_at=float(d["updated_at"]),
    )


async def add_event(
    client: redis.asyncio.Redis,
    keys: Keys,
    case_id: str,
    *,
    type: str,
    who: str,
    why: str,
    detail: dict[str, Any],
) -> str:
    now = time.time()
    pipe = client.pipeline(transaction=True)
    pipe.xadd(
        keys.case_events(case_id),
        {"type": type, "who": who, "at": now, "why": why, "detail": orjson.dumps(detail)},
    )
    pipe.hset(keys.case(case_id), mapping={"updated_at": now})
    sid = (await pipe.execute())[0]
    await audit(client, keys, who=who, what=f"case.{type}", why=why, target=case_id, detail=detail)
    return _s(sid)


async def open_case(
    client: redis.asyncio.Redis,
    keys: Keys,
    *,
    subject_kind: str,
    subject_id: str,
    by: str,
    why: str,
    title: str = "",
    assignee: str | None = None,
) -> Case:
    """A new case; a subject with a case not closed gets 409 naming that case."""
    for c in (await list_cases(client, keys, subject=f"{subject_kind}:{subject_id}")).cases:
        if c.status != "closed":
            raise Conflict(f"{subject_kind} {subject_id!r} already has case {c.id} ({c.status})")
    now = time.time()
    case_id = f"case-{await client.incr(keys.meta('case_seq'))}"
    fields = {
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "title": title or f"{subject_kind} {subject_id}",
        "status": "open",
        "assignee": assignee or "",
        "disposition": "",
        "created_by": by,
        "created_at": now,
        "updated_at": now,
    }
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.case(case_id), mapping=fields)  # type: ignore[arg-type]
    pipe.zadd(keys.cases_index, {case_id: now})
    await pipe.execute()
    await add_event(client, keys, case_id, type="opened", who=by, why=why, detail={})
    return await get_case(client, keys, case_id)


async def get_case(client: redis.asyncio.Redis, keys: Keys, case_id: str) -> Case:
    h = await client.hgetall(keys.case(case_id))
    if not h:
        raise NotFound(f"case {case_id!r} not found")
    case = _case(case_id, h)
    rows: list[Any] = await client.xrange(keys.case_events(case_id))  # type: ignore[assignment]
    for sid, f in rows:
        d = {_s(k): _s(v) for k, v in dict(f).items()}
        case.events.append(
            CaseEvent(
                id=_s(sid),
                type=d["type"],
                who=d["who"],
                at=float(d["at"]),
                why=d.get("why", ""),
                detail=orjson.loads(d.get("detail", "{}")),
            )
        )
    return case


async def update_case(
    client: redis.asyncio.Redis,
    keys: Keys,
    case_id: str,
    *,
    by: str,
    why: str,
    status: str | None = None,
    assignee: str | None = None,
    disposition: str | None = None,
    note: str | None = None,
) -> Case:
    case = await get_case(client, keys, case_id)
    if status == "closed" and not (disposition or case.disposition):
        raise InvalidInput.on("disposition", "required to close a case")
    changes: list[tuple[str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    if status is not None and status != case.status:
        fields["status"] = status
        changes.append(("status", {"from": case.status, "to": status}))
    if assignee is not None and assignee != (case.assignee or ""):
        fields["assignee"] = assignee
        changes.append(("assignee", {"from": case.assignee, "to": assignee or None}))
    if disposition is not None and disposition != case.disposition:
        fields["disposition"] = disposition
        changes.append(("disposition", {"from": case.disposition, "to": disposition}))
    if note:
        changes.append(("note", {"text": note}))
    if not changes:
        raise InvalidInput("nothing to change: give status, assignee, disposition or note")
    if fields:
        await client.hset(keys.case(case_id), mapping=fields)  # type: ignore[arg-type]
    for type_, detail in changes:
        await add_event(client, keys, case_id, type=type_, who=by, why=why, detail=detail)
    return await get_case(client, keys, case_id)


async def list_cases(
    client: redis.asyncio.Redis,
    keys: Keys,
    *,
    status: str | None = None,
    assignee: str | None = None,
    subject: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasesPage:
    """Newest first, filtered by status, assignee and subject (``kind:id``)."""
    raw: list[Any] = await client.zrevrange(keys.cases_index, 0, -1)
    ids = [_s(i) for i in raw]
    pipe = client.pipeline(transaction=False)
    for i in ids:
        pipe.hgetall(keys.case(i))
    found = [_case(i, h) for i, h in zip(ids, await pipe.execute(), strict=True) if h]
    if status is not None:
        found = [c for c in found if c.status == status]
    if assignee is not None:
        found = [c for c in found if c.assignee == assignee]
    if subject is not None:
        found = [c for c in found if f"{c.subject_kind}:{c.subject_id}" == subject]
    return CasesPage(cases=found[offset : offset + limit], total=len(found))
