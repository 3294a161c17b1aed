"""/healthz (the process answers), /readyz (a Redis write, the spool's disk, the graph's replay,
model, graph), /metrics, /v1/trivial."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api import metrics
from api.deps import engine, settings
from api.schemas import Health, Ready, Trivial
from fraudring.settings import Settings
from realtime.service import DecisionEngine

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
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


async def _replay_check(eng: DecisionEngine) -> dict[str, Any]:
    """A gap in the graph's replay of the decision stream (workers.replay) until accepted."""
    try:
        raw = await eng.redis.get(eng.keys.meta("replay_gap"))
    except Exception as exc:  # reported by the redis check already
        return {"ok": True, "detail": f"unknown: {type(exc).__name__}"}
    if raw is None:
        return {"ok": True, "detail": "no gap"}
    gap = orjson.loads(raw)
    return {
        "ok": False,
        "detail": f"the graph misses decision-stream entries from {gap.get('replay_point')} "
        f"(trimmed up to {gap.get('trimmed_to')}); see `fraudring status`",
    }


@router.get(
    "/readyz",
    summary="Redis (a write), spool, graph replay, model and graph each checked; 503 when one "
    "is not ready (details only with an API key)",
    response_model=None,
    responses={
        200: {"model": Ready, "description": "every dependency answers"},
        503: {"model": Ready, "description": "a dependency is not ready (details in the body)"},
    },
)
async def readyz(
    request: Request,
    eng: Annotated[DecisionEngine, Depends(engine)],
    s: Annotated[Settings, Depends(settings)],
) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    ok, msg = await eng.ping()
    checks["redis"] = {"ok": ok, "detail": msg}
    sok, smsg = await asyncio.to_thread(eng.spool.writable)
    checks["spool"] = {"ok": sok, "detail": smsg}
    checks["replay"] = await _replay_check(eng) if ok else {"ok": True, "detail": "unknown"}
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


@router.get(
    "/v1/trivial",
    summary="A do-nothing endpoint: the baseline of the benchmark",
    response_model=None,  # documented, not validated: the baseline does no work
    responses={200: {"model": Trivial, "description": "always"}},
)
async def trivial() -> dict[str, bool]:
    return {"ok": True}
