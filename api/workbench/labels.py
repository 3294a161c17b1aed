"""Labels from investigators: applied to the graph at once (the page shows the change), each
recorded with who, when and why, confirmed first when it reaches far, and undoable.

Labels posted here are few and interactive, so the API writes them to the graph itself and
re-runs ring detection around the touched accounts at once; the accounts also go to the
workers' rescore set (``{p}meta:rescore``), which pushes the new ring risk to Redis for
decisions. `label` on a graph node is idempotent, so a later worker pass changes nothing.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Workbench
from fraudring.errors import Conflict, InvalidInput, NotFound
from graph.repository import GraphStore
from graph.schemas import Ring, RingParams
from realtime import cases
from realtime.audit import audit
from realtime.schemas import EntityId

TargetKind = Literal["ring", "txn", "user", "card", "device", "ip", "merchant"]


class NeedsConfirmation(Conflict):
    code = "confirmation_required"


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TargetKind = Field(description="`ring` labels every member")
    id: EntityId
    label: Literal["fraud", "legitimate"]
    reason: str = Field(min_length=1, max_length=2000, description="why; kept with the label")
    case_id: str | None = Field(default=None, max_length=64)
    confirm: bool = Field(
        default=False, description="required for a whole ring or a hub (many accounts)"
    )


class LabelOut(BaseModel):
    event_id: str = Field(description="audit event; POST /v1/labels/{event_id}/undo takes it back")
    who: str
    changed: int
    targets: list[list[str | None]] = Field(description="[kind, id, old label, new label]")
    rings: list[Ring] = Field(description="the rings of the touched accounts, rescored")


async def _targets(st: GraphStore, body: LabelIn) -> tuple[list[tuple[str, str]], list[str]]:
    """(kind, id) to label and the accounts they touch; 409 when confirmation is needed."""
    if body.kind == "ring":
        ring = await run_in_threadpool(st.ring, body.id)
        if not body.confirm:
            raise NeedsConfirmation(
                f"labelling ring {ring.id} labels its {ring.size} members {body.label}; "
                "send confirm=true to go ahead"
            )
        return [("user", m) for m in ring.members], list(ring.members)
    if body.kind in ("user", "txn"):
        if body.kind == "txn":
            txns = await run_in_threadpool(st.txns_by_id, [body.id])
            if body.id not in txns:
                raise NotFound(f"txn {body.id!r} is not in the graph (not ingested yet?)")
            return [("txn", body.id)], [txns[body.id].user_id]
        return [("user", body.id)], [body.id]
    ev = await run_in_threadpool(st.entity_evidence, body.kind, body.id)
    if ev.degree > RingParams().hub_cap and not body.confirm:
        raise NeedsConfirmation(
            f"{body.kind} {body.id} is a hub used by {ev.degree} accounts; labelling it "
            f"{body.label} marks what all of them share; send confirm=true to go ahead"
        )
    return [(body.kind, body.id)], []


async def _rescore(st: GraphStore, eng: Workbench, users: list[str]) -> list[Ring]:
    if not users:
        return []
    update = await run_in_threadpool(lambda: st.detect_rings(touched_users=users))
    await eng.redis.sadd(eng.keys.meta("rescore"), *users)
    return update.rings


async def label(st: GraphStore, eng: Workbench, body: LabelIn, *, who: str) -> LabelOut:
    if body.case_id is not None:
        await cases.get_case(eng.redis, eng.keys, body.case_id)
    targets, users = await _targets(st, body)
    now = time.time()
    done: list[list[str | None]] = []
    for kind, ident in targets:
        old = await run_in_threadpool(st.current_label, kind=kind, id=ident)
        res = await run_in_threadpool(
            st.label, kind=kind, id=ident, label=body.label, by=who, at=now
        )
        if res.changed:
            done.append([kind, ident, old, body.label])
    detail: dict[str, Any] = {"targets": done, "case_id": body.case_id, "subject": body.kind}
    what = f"label.{body.label}"
    event = await audit(
        eng.redis,
        eng.keys,
        who=who,
        what=what,
        why=body.reason,
        target=",".join(f"{k}:{i}" for k, i, *_ in done) or f"{body.kind}:{body.id}",
        detail=detail,
    )
    if body.case_id is not None:
        await cases.add_event(
            eng.redis,
            eng.keys,
            body.case_id,
            type="label",
            who=who,
            why=body.reason,
            detail={**detail, "event_id": event},
        )
    rings = await _rescore(st, eng, users)
    return LabelOut(event_id=event, who=who, changed=len(done), targets=done, rings=rings)


async def undo(st: GraphStore, eng: Workbench, event_id: str, *, who: str, reason: str) -> LabelOut:
    """Put back the labels an event changed; an event is undone once."""
    rows: list[Any] = await eng.redis.xrange(eng.keys.audit_stream, event_id, event_id)  # type: ignore[assignment]
    if not rows:
        raise NotFound(f"label event {event_id!r} not found")
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in dict(rows[0][1]).items()
    }
    if not fields.get("what", "").startswith("label.") or fields["what"] == "label.undo":
        raise InvalidInput.on("event_id", f"{event_id} is not a label event")
    if not await eng.redis.sadd(eng.keys.meta("undone"), event_id):
        raise Conflict(f"label event {event_id} was already undone")
    detail = orjson.loads(fields.get("detail", "{}"))
    now = time.time()
    back: list[list[str | None]] = []
    users: list[str] = []
    for kind, ident, old, new in detail.get("targets", []):
        if old is None:
            await run_in_threadpool(st.unlabel, kind=kind, id=ident, by=who, at=now)
        else:
            await run_in_threadpool(st.label, kind=kind, id=ident, label=old, by=who, at=now)
        back.append([kind, ident, new, old])
        if kind == "user":
            users.append(ident)
        elif kind == "txn":
            txns = await run_in_threadpool(st.txns_by_id, [ident])
            users += [t.user_id for t in txns.values()]
    case_id = detail.get("case_id")
    out = {"targets": back, "undo_of": event_id, "case_id": case_id}
    event = await audit(
        eng.redis,
        eng.keys,
        who=who,
        what="label.undo",
        why=reason,
        target=",".join(f"{k}:{i}" for k, i, *_ in back),
        detail=out,
    )
    if case_id:
        await cases.add_event(
            eng.redis,
            eng.keys,
            case_id,
            type="undo",
            who=who,
            why=reason,
            detail={**out, "event_id": event},
        )
    rings = await _rescore(st, eng, users)
    return LabelOut(event_id=event, who=who, changed=len(back), targets=back, rings=rings)
