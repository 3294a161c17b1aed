"""The FastAPI app factory: `uvicorn --factory api.app:create_app` (what `fraudring serve` runs).

Settings are validated when the app is built; the engine (Redis client, model, rules, spool) is
created in the lifespan, with a once-a-second upkeep task for model / rules reloads and the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api import errors
from api.metrics import TimingMiddleware
from api.routers import decisions, health, investigate, labels, models, rules
from fraudring import __version__
from fraudring.logs import get_logger
from fraudring.settings import Settings, SettingsError, get_settings
from realtime.schemas import BatchRequest, Transaction
from realtime.service import DecisionEngine

log = get_logger(__name__)

DESCRIPTION = """Real-time fraud decisions: velocity features in Redis, cached graph ring risk,
XGBoost and declarative rules. Send the API key in the `X-API-Key` header; scopes are `score`
(decisions), `investigate` (models, rules) and `admin` (rules reload)."""


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
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
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
        log.info("api.started", model=engine.scorer.model and engine.scorer.model.version)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await engine.close()
            stack = getattr(app.state, "graph_stack", None)
            if stack is not None:
                stack.close()

    app = FastAPI(
        title="fraudring",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    routers = (decisions, models, rules, health, labels, investigate)
    for router in (r.router for r in routers):
        app.include_router(router)
    app.add_middleware(TimingMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
