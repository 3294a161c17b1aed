"""POST /v1/labels: queue fraud / legitimate labels; the workers apply them and rescore.

Thin: validates, appends to ``{p}stream:labels`` (realtime.labels) and answers 202. The
``fraudring.labels.apply`` task (workers) writes the graph and refreshes the ring risk.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require
from api.deps import engine
from api.errors import documented
from api.schemas import LabelsQueued
from realtime.labels import LabelKind, LabelRecord, publish_labels_async
from realtime.schemas import EntityId
from realtime.service import DecisionEngine

router = APIRouter(prefix="/v1/labels", tags=["labels"], responses=documented(401, 403, 422))


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: LabelKind
    id: EntityId
    label: Literal["fraud", "legitimate"]
    at: float | None = Field(default=None, gt=0, description="When known; default now.")


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: EntityId
    labels: list[LabelIn] = Field(min_length=1, max_length=1000)


@router.post(
    "",
    status_code=202,
    response_model=LabelsQueued,
    summary="Queue labels; the workers update the graph and rescore the rings they touch",
    dependencies=[Depends(require("investigate"))],
)
async def post_labels(
    body: LabelsIn, eng: Annotated[DecisionEngine, Depends(engine)]
) -> dict[str, Any]:
    now = time.time()
    records = [
        LabelRecord(kind=x.kind, id=x.id, label=x.label, by=body.by, at=x.at or now)
        for x in body.labels
    ]
    ids = await publish_labels_async(eng.redis, eng.keys, records)
    return {"queued": len(ids), "stream_ids": ids}
