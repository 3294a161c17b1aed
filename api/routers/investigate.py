"""Investigator endpoints (scope `investigate`): rings, neighbourhoods, paths, and the page.

The graph client is synchronous, so queries run in the thread pool; one store per process is
opened lazily and kept on the app state.
"""

from __future__ import annotations

import contextlib
import threading
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.auth import require
from api.deps import settings
from api.errors import RequestInvalid, documented
from fraudring.contract.ids import ENTITY_KINDS, check_id
from fraudring.errors import Unavailable
from fraudring.settings import Settings
from graph.repository import GraphStore
from graph.schemas import EntityKind, EntityRef, GraphPath, Neighbourhood, Ring, check_kind
from graph.service import open_store
from realtime.schemas import EntityId

router = APIRouter(tags=["investigate"], responses=documented(401, 403, 422, 503))
_lock = threading.Lock()
KINDS = ", ".join(ENTITY_KINDS)


def store(request: Request, s: Annotated[Settings, Depends(settings)]) -> GraphStore:
    st: GraphStore | None = getattr(request.app.state, "graph_store", None)
    if st is not None:
        return st
    if s.graph_url is None:
        raise Unavailable("graph store not configured: set FRAUDRING_GRAPH_URL")
    with _lock:
        st = getattr(request.app.state, "graph_store", None)
        if st is None:
            stack = contextlib.ExitStack()
            st = stack.enter_context(open_store(s.graph_url, settings=s))
            request.app.state.graph_store = st
            request.app.state.graph_stack = stack  # closed with the app (see app.py lifespan)
    return st


Store = Annotated[GraphStore, Depends(store)]
Ref = Annotated[
    str,
    Query(
        description=f"`kind:id`, kind one of {KINDS}",
        pattern=r"^(user|card|device|ip|merchant):.+$",
        examples=["user:u42"],
    ),
]
guard = [Depends(require("investigate"))]


def parse_follow(follow: str | None) -> list[EntityKind] | None:
    """The `follow` parameter: comma-separated kinds, a 422 naming it for a wrong one."""
    if not follow:
        return None
    return [check_kind(k.strip(), field="follow") for k in follow.split(",") if k.strip()]


@router.get("/v1/rings", response_model=list[Ring], dependencies=guard, summary="Top rings by risk")
async def top_rings(st: Store, top: Annotated[int, Query(ge=1, le=500)] = 20) -> list[Ring]:
    return await run_in_threadpool(st.top_rings, top)


@router.get(
    "/v1/rings/{ring_id}",
    response_model=Ring,
    dependencies=guard,
    summary="One ring",
    responses=documented(404, e404="no such ring"),
)
async def ring(st: Store, ring_id: EntityId) -> Ring:
    return await run_in_threadpool(st.ring, ring_id)


@router.get(
    "/v1/entities/{kind}/{entity_id}/neighbourhood",
    response_model=Neighbourhood,
    dependencies=guard,
    summary="k-hop neighbourhood of any entity",
    responses=documented(404, e404="no such entity"),
)
async def neighbourhood(
    st: Store,
    kind: EntityKind,
    entity_id: EntityId,
    hops: Annotated[int, Query(ge=1, le=4)] = 2,
    max_nodes: Annotated[int, Query(ge=1, le=2000)] = 200,
    follow: Annotated[str | None, Query(description=f"comma-separated kinds of {KINDS}")] = None,
) -> Neighbourhood:
    kinds = parse_follow(follow)
    return await run_in_threadpool(
        lambda: st.neighbourhood(kind, entity_id, hops=hops, max_nodes=max_nodes, follow=kinds)
    )


@router.get(
    "/v1/path",
    response_model=GraphPath,
    dependencies=guard,
    summary="Shortest path",
    responses=documented(404, e404="an end is not in the graph"),
)
async def path(st: Store, src: Ref, dst: Ref) -> GraphPath:
    """`src` and `dst` are `kind:id`, e.g. `user:u42` and `device:d7`."""
    refs = []
    for name, value in (("src", src), ("dst", dst)):
        kind, _, ident = value.partition(":")
        try:
            check_id(ident)
        except ValueError as exc:
            raise RequestInvalid.on(name, f"the id after {kind}: {exc}") from None
        refs.append(EntityRef(kind=check_kind(kind, field=name), id=ident))
    return await run_in_threadpool(lambda: st.path(src=refs[0], dst=refs[1]))


@router.get("/investigate", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The investigator page: a picture of rings and neighbourhoods, and a label form."""
    html = files("api.static").joinpath("investigate.html").read_text()
    return HTMLResponse(html)
