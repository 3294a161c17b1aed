"""Investigator workbench, read side (scope `investigate`): evidence, history, ring search and
export. Thin: the graph store and api.workbench do the work."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.auth import require
from api.deps import Offset, Workbench, workbench
from api.errors import documented
from api.routers.investigate import Store, parse_follow
from api.workbench import queue
from fraudring.contract.ids import MAX_ID_LEN
from graph.formats import MEDIA, render, ring_subgraph
from graph.history import RingTimeline, TxnPage
from graph.investigation import EntityEvidence, RingEvidence
from graph.schemas import EntityKind
from graph.typology import TYPOLOGIES
from realtime.schemas import Decision, EntityId

router = APIRouter(tags=["workbench"], responses=documented(401, 403, 422, 503))
guard = [Depends(require("investigate"))]
Engine = Annotated[Workbench, Depends(workbench)]
Typology = Literal["synthetic_identity", "card_testing", "ato", "mule"]
ExportFormat = Literal["csv", "json", "graphml", "png"]
assert set(TYPOLOGIES) == set(Typology.__args__)  # type: ignore[attr-defined]


@router.get(
    "/v1/rings/search",
    response_model=queue.RingsPage,
    dependencies=guard,
    summary="Rings by risk: search by any id, filter, page",
)
async def search_rings(
    st: Store,
    q: Annotated[
        str | None, Query(max_length=MAX_ID_LEN, description="ring, member or entity id")
    ] = None,
    min_size: Annotated[int, Query(ge=1, le=10_000)] = 1,
    max_size: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    min_risk: Annotated[float, Query(ge=0, le=1)] = 0.0,
    typology: Typology | None = None,
    new_since: Annotated[
        float | None, Query(ge=0, le=1e12, description="created at or after (epoch s)")
    ] = None,
    suspicious: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 25,
    offset: Offset = 0,
) -> queue.RingsPage:
    return await queue.search_rings(
        st,
        q=q,
        min_size=min_size,
        max_size=max_size,
        min_risk=min_risk,
        typology=typology,
        new_since=new_since,
        suspicious_only=suspicious,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/v1/rings/{ring_id}/evidence",
    response_model=RingEvidence,
    dependencies=guard,
    summary="Why a ring is a ring: ranked links, risk parts, homes, typology, narrative",
    responses=documented(404, e404="no such ring"),
)
async def ring_evidence(st: Store, ring_id: EntityId) -> RingEvidence:
    return await run_in_threadpool(st.ring_evidence, ring_id)


@router.get(
    "/v1/rings/{ring_id}/timeline",
    response_model=RingTimeline,
    dependencies=guard,
    summary="How the ring changed (appeared, grew, split, merged), who joined when, and the "
    "members' transactions per day",
    responses=documented(404, e404="no such ring, and none with recorded events"),
)
async def ring_timeline(st: Store, ring_id: EntityId) -> RingTimeline:
    """A ring merged away or dissolved answers with its recorded events only."""
    return await run_in_threadpool(st.ring_timeline, ring_id)


@router.get(
    "/v1/rings/{ring_id}/export",
    dependencies=guard,
    summary="A ring (members, tying entities, edges) as CSV, JSON, GraphML or PNG",
    responses={
        **documented(404, e404="no such ring"),
        200: {"content": {m: {} for m in MEDIA.values()}},
    },
)
async def ring_export(st: Store, ring_id: EntityId, format: ExportFormat = "json") -> Response:
    sub = await run_in_threadpool(ring_subgraph, st, ring_id)  # type: ignore[arg-type]
    body = await run_in_threadpool(render, sub, format, title=f"ring {ring_id}")
    return _file(body, format, f"{ring_id}.{format}")


@router.get(
    "/v1/entities/{kind}/{entity_id}/export",
    dependencies=guard,
    summary="A neighbourhood as CSV, JSON, GraphML or PNG",
    responses={
        **documented(404, e404="no such entity"),
        200: {"content": {m: {} for m in MEDIA.values()}},
    },
)
async def neighbourhood_export(
    st: Store,
    kind: EntityKind,
    entity_id: EntityId,
    format: ExportFormat = "json",
    hops: Annotated[int, Query(ge=1, le=4)] = 2,
    max_nodes: Annotated[int, Query(ge=1, le=2000)] = 200,
    follow: Annotated[str | None, Query(description="comma-separated kinds")] = None,
) -> Response:
    kinds = parse_follow(follow)
    sub = await run_in_threadpool(
        lambda: st.neighbourhood(kind, entity_id, hops=hops, max_nodes=max_nodes, follow=kinds)
    )
    body = await run_in_threadpool(render, sub, format, title=f"{kind} {entity_id}, {hops} hops")
    return _file(body, format, f"{kind}-{entity_id}.{format}")


def _file(body: bytes, fmt: str, name: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


@router.get(
    "/v1/entities/{kind}/{entity_id}/evidence",
    response_model=EntityEvidence,
    dependencies=guard,
    summary="An entity's labels, activity, degree, rings and narrative",
    responses=documented(404, e404="no such entity"),
)
async def entity_evidence(st: Store, kind: EntityKind, entity_id: EntityId) -> EntityEvidence:
    return await run_in_threadpool(st.entity_evidence, kind, entity_id)


@router.get(
    "/v1/entities/{kind}/{entity_id}/transactions",
    response_model=TxnPage,
    dependencies=guard,
    summary="An entity's transactions, newest first; page with `before`",
    responses=documented(404, e404="no such entity"),
)
async def entity_transactions(
    st: Store,
    kind: EntityKind,
    entity_id: EntityId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[
        float | None, Query(ge=0, le=1e12, description="next_before of the previous page")
    ] = None,
) -> TxnPage:
    return await run_in_threadpool(
        lambda: st.transactions(kind, entity_id, limit=limit, before=before)
    )


@router.get(
    "/v1/decisions/{txn_id}",
    dependencies=guard,
    summary="A decision (the idempotency window); reviews in the queue keep their explanation",
    response_model=None,  # documented, not filtered: the stored body is returned as it was
    responses={
        **documented(404, e404="no decision for this txn_id"),
        200: {"model": Decision, "description": "the decision as it was answered"},
    },
)
async def get_decision(eng: Engine, txn_id: EntityId) -> dict[str, Any]:
    return await queue.decision(eng, txn_id)
