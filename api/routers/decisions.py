"""POST /v1/decisions and /v1/decisions/batch (scope `score`).

The body is read raw and validated with `model_validate_json` and the settings as context (the
amount cap and clock skew are configurable); the OpenAPI schema still documents it (see app.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api import metrics
from api.auth import SECURITY_OPENAPI, check_key
from api.errors import documented, invalid_from
from fraudring.settings import Settings
from realtime.schemas import BatchRequest, BatchResponse, Decision, Transaction
from realtime.service import Outcome

router = APIRouter(prefix="/v1", tags=["decisions"])
M = TypeVar("M", bound=BaseModel)

ERRORS = documented(401, 403, 409, 422)


def body_schema(name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    return {"requestBody": body, **SECURITY_OPENAPI}


def parse(model: type[M], raw: bytes, s: Settings) -> M:
    ctx = {"amount_cap": s.amount_cap, "max_future_skew_s": s.max_future_skew_s}
    try:
        return model.model_validate_json(raw, context=ctx)
    except ValidationError as exc:
        raise invalid_from(exc.errors()) from None


def _count(o: Outcome) -> None:
    metrics.count(decision=o.decision, degraded=o.degraded, replayed=o.replayed, rules=o.rules)


@router.post(
    "/decisions",
    response_model=Decision,
    summary="Decide on one transaction",
    description="Idempotent by `txn_id`: a retry returns the stored decision "
    "(header `Idempotent-Replay: true`).",
    openapi_extra=body_schema("Transaction"),
    responses=ERRORS,
)
async def create_decision(request: Request) -> Response:
    state = request.app.state  # no Depends: each dependency costs time on the hot path
    check_key(state.settings, request.headers.get("x-api-key"), "score")
    txn = parse(Transaction, await request.body(), state.settings)
    outcome = await state.engine.decide(txn)
    _count(outcome)
    headers = {"Idempotent-Replay": "true"} if outcome.replayed else None
    return Response(outcome.body, media_type="application/json", headers=headers)


@router.post(
    "/decisions/batch",
    response_model=BatchResponse,
    summary="Decide on up to 100 transactions, in order",
    description="The whole batch is refused (422) if any transaction is invalid.",
    openapi_extra=body_schema("BatchRequest"),
    responses=ERRORS,
)
async def create_decisions(request: Request) -> Response:
    state = request.app.state
    check_key(state.settings, request.headers.get("x-api-key"), "score")
    batch = parse(BatchRequest, await request.body(), state.settings)
    bodies = []
    for txn in batch.transactions:
        outcome = await state.engine.decide(txn)
        _count(outcome)
        bodies.append(outcome.body)
    return Response(b'{"decisions":[' + b",".join(bodies) + b"]}", media_type="application/json")
