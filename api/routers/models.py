"""GET /v1/models and /v1/models/{version}: what the registry holds and which is live."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import require
from api.deps import settings
from api.errors import documented
from api.schemas import ModelList, ModelManifest
from fraudring.registry import ModelRegistry
from fraudring.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["models"], responses=documented(401, 403, 422))
SUMMARY_FIELDS = ("version", "created_at", "kind", "metrics", "thresholds", "data_window", "live")


@router.get(
    "",
    response_model=ModelList,
    summary="Model versions, newest first",
    dependencies=[Depends(require("investigate"))],
)
async def list_models(s: Annotated[Settings, Depends(settings)]) -> dict[str, Any]:
    reg = ModelRegistry(s.models_path)
    out = []
    for version in reversed(reg.versions()):
        m = reg.manifest(version)
        out.append(
            {k: m.get(k) for k in SUMMARY_FIELDS} | {"n_features": len(m.get("features", []))}
        )
    return {"live": reg.live_version(), "models": out}


@router.get(
    "/{version}",
    response_model=ModelManifest,
    summary="One model's manifest: metrics, features, thresholds, whether it is live",
    dependencies=[Depends(require("investigate"))],
    responses=documented(404, e404="no such version"),
)
async def get_model(version: str, s: Annotated[Settings, Depends(settings)]) -> dict[str, Any]:
    return ModelRegistry(s.models_path).manifest(version)
