"""The FastAPI app factory: `uvicorn --factory api.app:create_app` (what `fraudring serve` runs).

Settings are validated when the app is built; the engine (Redis client, model, rules, spool) is
created in the lifespan, with a once-a-second upkeep task for model / rules reloads and the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api import errors
from api.examples import add_examples
from api.metrics import TimingMiddleware
from api.routers import (
    cases,
    decisions,
    docs,
    health,
    investigate,
    labels,
    models,
    rules,
    workbench,
)
from fraudring import __version__
from fraudring.logs import configure_logging, get_logger
from fraudring.settings import Settings, SettingsError, get_settings
from realtime.schemas import BatchRequest, Transaction
from realtime.service import DecisionEngine

log = get_logger(__name__)
#: How long a stopping API process waits for its upkeep task and its open connections.
SHUTDOWN_WAIT_S = 10.0

DESCRIPTION = """Real-time fraud decisions: velocity features in Redis, cached graph ring risk,
XGBoost and declarative rules. Send the API key in the `X-API-Key` header; scopes are `score`
(decisions), `investigate` (models, rules, rings, evidence, cases, labels, the review queue,
step-up lists) and `admin` (rules reload, block and allow lists)."""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request models, which the routers read raw for speed."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _, defs = models_json_schema(
        [(Transaction, "validation"), (BatchRequest, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    add_examples(schemas)
    # The amount cap is a setting: the schema states this deployment's.
    cap = app.state.settings.amount_cap
    schemas["Transaction"]["properties"]["amount"]["exclusiveMaximum"] = cap
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not structlog.is_configured():
        # uvicorn's worker processes start fresh: without this, structlog's default prints
        # every debug event (one line per decision) to stdout
        configure_logging(level=settings.log_level)
    if settings.redis_url is None:
        raise SettingsError(
            "FRAUDRING_REDIS_URL: not set; start the API with `fraudring serve` (which starts "
            "the embedded runtime) or point it at a Redis"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = DecisionEngine(settings)
        await engine.upkeep()
        app.state.engine = engine
        task = asyncio.create_task(engine.run_upkeep())
        # The model, rules and imports live as long as the process: keep them out of the
        # garbage collector's full passes, which otherwise pause requests for milliseconds.
        gc.collect()
        gc.freeze()
        log.info("api.started", model=engine.scorer.model and engine.scorer.model.version)
        try:
            yield
        finally:
            task.cancel()
            # Bounded: an upkeep step blocked in a thread (a hung Redis call) must not keep a
            # stopping process alive.
            await asyncio.wait({task}, timeout=SHUTDOWN_WAIT_S)
            await engine.close()
            wb = getattr(app.state, "workbench", None)
            if wb is not None:
                await wb.close()
            stack = getattr(app.state, "graph_stack", None)
            if stack is not None:
                stack.close()

    app = FastAPI(
        title="fraudring",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # An id may end in "/": a redirect to the id without it would be another entity.
        redirect_slashes=False,
        docs_url=None,  # served by api.routers.docs from vendored assets, no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    # workbench before investigate: /v1/rings/search must not be read as a ring id
    routers = (decisions, models, rules, health, labels, workbench, cases, investigate, docs)
    for router in (r.router for r in routers):
        app.include_router(router)
    docs.mount_static(app)
    app.add_middleware(TimingMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
