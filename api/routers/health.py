"""/healthz (the process answers), /readyz (Redis, model, graph), /metrics, /v1/trivial."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api import metrics
from api.deps import engine, settings
from fraudring.settings import Settings
from realtime.service import DecisionEngine

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _graph_check(s: Settings) -> tuple[bool, str]:
    from graph.service import open_store

    if s.graph_url is None:
        return False, "no graph URL configured"
    try:
        with open_store(s.graph_url, settings=s) as store:
            return True, store.describe()
    except Exception as exc:  # any driver error means "not ready"
        return False, f"unreachable: {type(exc).__name__}: {exc}"


@router.get(
    "/readyz",
    summary="Redis, model and graph each checked; 503 when one is down (details with a key)",
    responses={503: {"description": "a dependency is down (details in the body)"}},
)
async def readyz(
    request: Request,
    eng: Annotated[DecisionEngine, Depends(engine)],
    s: Annotated[Settings, Depends(settings)],
) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    ok, msg = await eng.ping()
    checks["redis"] = {"ok": ok, "detail": msg}
    model = eng.scorer.model
    if eng.scorer.error:
        checks["model"] = {"ok": False, "detail": f"live model refused: {eng.scorer.error}"}
    elif model is None:
        checks["model"] = {"ok": True, "detail": "no live model: deciding with rules only"}
    else:
        checks["model"] = {"ok": True, "detail": f"live {model.version}"}
    try:
        gok, gmsg = await asyncio.wait_for(asyncio.to_thread(_graph_check, s), timeout=3.0)
    except TimeoutError:
        gok, gmsg = False, "timed out after 3 s"
    checks["graph"] = {"ok": gok, "detail": gmsg}
    ready = all(c["ok"] for c in checks.values())
    if s.scopes_for(request.headers.get("x-api-key") or "") is None:
        # Details name internal hosts and ports: only for a caller with a key.
        checks = {
            name: {"ok": c["ok"], "detail": "ok" if c["ok"] else "down (details with an API key)"}
            for name, c in checks.items()
        }
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(s: Annotated[Settings, Depends(settings)]) -> Response:
    body, content_type = metrics.exposition(s.metrics_dir)
    return Response(body, media_type=content_type)


@router.get("/v1/trivial", summary="A do-nothing endpoint: the baseline of the benchmark")
async def trivial() -> dict[str, bool]:
    return {"ok": True}
