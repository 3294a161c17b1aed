"""Investigator workbench, write side: cases, labels with reasons and undo, the review queue,
block / allow / step-up lists and actions with their blast radius, the audit trail. Who acts is
the API key's name. Thin: realtime.cases, realtime.lists and api.workbench do the work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import caller, require
from api.deps import Offset, Workbench, workbench
from api.errors import documented
from api.routers.investigate import Store
from api.workbench import actions, queue
from api.workbench.labels import LabelIn, LabelOut, label, undo
from fraudring.errors import Forbidden
from realtime import cases, lists
from realtime.audit import AuditEvent, recent
from realtime.cases import Case, CasesPage, Disposition, Status, SubjectKind
from realtime.lists import ListAction, ListEntryOut, ListKind, ListsPage, ListTarget
from realtime.schemas import EntityId

router = APIRouter(tags=["cases and actions"], responses=documented(401, 403, 422, 503))
Engine = Annotated[Workbench, Depends(workbench)]
Who = Annotated[str, Depends(caller("investigate"))]
Reason = Field(min_length=1, max_length=2000, description="why; kept in the audit trail")


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_kind: SubjectKind
    subject_id: EntityId
    title: str = Field(default="", max_length=200)
    assignee: str | None = Field(default=None, max_length=64)
    reason: str = Reason


class CasePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    assignee: str | None = Field(default=None, max_length=64)
    disposition: Disposition | None = None
    note: str | None = Field(default=None, max_length=5000)
    reason: str = Field(default="", max_length=2000)


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Reason


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ListAction
    entities: list[ListTarget] = Field(min_length=1, max_length=1000)
    ttl_s: float = Field(default=7 * 86400, ge=60, le=lists.MAX_TTL_S)
    reason: str = Reason
    case_id: str | None = Field(default=None, max_length=64)


@router.post(
    "/v1/cases",
    response_model=Case,
    status_code=201,
    summary="Open a case",
    responses=documented(409, e409="the subject already has a case not closed"),
)
async def open_case(body: CaseIn, eng: Engine, who: Who) -> Case:
    return await cases.open_case(
        eng.redis,
        eng.keys,
        subject_kind=body.subject_kind,
        subject_id=body.subject_id,
        by=who,
        why=body.reason,
        title=body.title,
        assignee=body.assignee,
    )


@router.get(
    "/v1/cases",
    response_model=CasesPage,
    summary="Cases, newest first, filtered",
    dependencies=[Depends(require("investigate"))],
)
async def list_cases(
    eng: Engine,
    status: Status | None = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[
        str | None,
        Query(
            max_length=140,
            pattern=r"^(ring|user|card|device|ip|merchant):.+$",
            description="kind:id",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> CasesPage:
    return await cases.list_cases(
        eng.redis,
        eng.keys,
        status=status,
        assignee=assignee,
        subject=subject,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/v1/cases/{case_id}",
    response_model=Case,
    summary="A case with its history",
    dependencies=[Depends(require("investigate"))],
    responses=documented(404, e404="no such case"),
)
async def get_case(eng: Engine, case_id: EntityId) -> Case:
    return await cases.get_case(eng.redis, eng.keys, case_id)


@router.patch(
    "/v1/cases/{case_id}",
    response_model=Case,
    summary="Change status, assignee, disposition or add a note",
    responses=documented(404, e404="no such case"),
)
async def patch_case(case_id: EntityId, body: CasePatch, eng: Engine, who: Who) -> Case:
    return await cases.update_case(
        eng.redis,
        eng.keys,
        case_id,
        by=who,
        why=body.reason or body.note or "",
        status=body.status,
        assignee=body.assignee,
        disposition=body.disposition,
        note=body.note,
    )


@router.post(
    "/v1/investigate/labels",
    response_model=LabelOut,
    summary="Label a ring, transaction or entity now, with a reason; undoable",
    responses=documented(404, 409, e409="confirm=true needed (a ring or a hub)"),
)
async def post_label(body: LabelIn, st: Store, eng: Engine, who: Who) -> LabelOut:
    return await label(st, eng, body, who=who)


@router.post(
    "/v1/investigate/labels/{event_id}/undo",
    response_model=LabelOut,
    summary="Take back the labels of a label event",
    responses=documented(404, 409, e409="already undone"),
)
async def post_undo(
    event_id: Annotated[str, Path(pattern=r"^\d+-\d+$", description="event_id of the label")],
    body: UndoIn,
    st: Store,
    eng: Engine,
    who: Who,
) -> LabelOut:
    return await undo(st, eng, event_id, who=who, reason=body.reason)


@router.get(
    "/v1/review",
    response_model=queue.ReviewPage,
    summary="Decisions that answered review, oldest first, with explanation and ring",
    dependencies=[Depends(require("investigate"))],
)
async def review(
    st: Store,
    eng: Engine,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Offset = 0,
) -> queue.ReviewPage:
    return await queue.review_queue(st, eng, limit=limit, offset=offset)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["fraud", "legitimate"]
    reason: str = Reason
    case_id: str | None = Field(default=None, max_length=64)


@router.post(
    "/v1/review/{txn_id}/resolve",
    response_model=LabelOut,
    summary="Resolve a review: label the transaction, take it off the queue",
    responses=documented(404, e404="not in the queue"),
)
async def resolve(txn_id: EntityId, body: ResolveIn, st: Store, eng: Engine, who: Who) -> LabelOut:
    lab = LabelIn(kind="txn", id=txn_id, label=body.label, reason=body.reason, case_id=body.case_id)
    return await queue.resolve(st, eng, txn_id, lab, who=who)


@router.post(
    "/v1/actions/preview",
    response_model=actions.Preview,
    summary="What a block / allow / step-up would touch",
    dependencies=[Depends(require("investigate"))],
    responses=documented(404),
)
async def action_preview(body: actions.ActionIn, st: Store, eng: Engine) -> actions.Preview:
    return await actions.preview(st, eng, body)


@router.post(
    "/v1/actions",
    response_model=actions.Applied,
    status_code=201,
    summary="Apply it: list entries with an expiry, honoured by the next decision "
    "(block and allow need `admin`)",
    responses=documented(404),
)
async def action_apply(
    body: actions.ActionIn,
    st: Store,
    eng: Engine,
    who: Who,
    scopes: Annotated[frozenset[str], Depends(require("investigate"))],
) -> actions.Applied:
    return await actions.apply(st, eng, body, who=who, scopes=scopes)


@router.get(
    "/v1/lists",
    response_model=ListsPage,
    summary="Live list entries, soonest expiry first",
    dependencies=[Depends(require("investigate"))],
)
async def get_lists(
    eng: Engine,
    action: ListAction | None = None,
    kind: ListKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> ListsPage:
    return await lists.entries(
        eng.redis, eng.keys, action=action, kind=kind, limit=limit, offset=offset
    )


@router.post(
    "/v1/lists",
    response_model=list[ListEntryOut],
    status_code=201,
    summary="Add entities to a list (block and allow need `admin`)",
)
async def post_lists(
    body: ListIn,
    eng: Engine,
    who: Who,
    scopes: Annotated[frozenset[str], Depends(require("investigate"))],
) -> list[ListEntryOut]:
    if body.action in actions.ADMIN_ACTIONS and "admin" not in scopes:
        raise Forbidden(f"a {body.action} list entry needs a key with the 'admin' scope")
    out = await lists.put(
        eng.redis,
        eng.keys,
        body.entities,
        action=body.action,
        ttl_s=body.ttl_s,
        reason=body.reason,
        by=who,
        case_id=body.case_id,
    )
    return [ListEntryOut.of(e) for e in out]


@router.get(
    "/v1/lists/{kind}/{entity_id}",
    response_model=ListEntryOut,
    summary="An entity's list entry",
    dependencies=[Depends(require("investigate"))],
    responses=documented(404, e404="on no list"),
)
async def get_list_entry(kind: ListKind, entity_id: EntityId, eng: Engine) -> ListEntryOut:
    return ListEntryOut.of(await lists.get(eng.redis, eng.keys, kind, entity_id))


@router.delete(
    "/v1/lists/{kind}/{entity_id}",
    response_model=ListEntryOut,
    summary="Take an entity off its list (needs `admin`)",
    dependencies=[Depends(require("admin"))],
    responses=documented(404, e404="on no list"),
)
async def delete_list_entry(
    kind: ListKind,
    entity_id: EntityId,
    eng: Engine,
    who: Who,
    reason: Annotated[str, Query(min_length=1, max_length=2000)],
) -> ListEntryOut:
    return ListEntryOut.of(
        await lists.remove(eng.redis, eng.keys, kind, entity_id, by=who, reason=reason)
    )


@router.get(
    "/v1/audit",
    response_model=list[AuditEvent],
    summary="Who did what, newest first",
    dependencies=[Depends(require("investigate"))],
)
async def audit_trail(
    eng: Engine,
    target: Annotated[str | None, Query(max_length=140, description="kind:id or case id")] = None,
    count: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEvent]:
    return await recent(eng.redis, eng.keys, count=count, target=target)
