"""POST /v1/decisions and /v1/decisions/batch (scope `score`).

The body is read raw and validated with `model_validate_json` and the settings as context (the
amount cap and clock skew are configurable); the OpenAPI schema still documents it (see app.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api import metrics
from api.auth import SECURITY_OPENAPI, check_key
from api.errors import BodyTooLarge, RequestInvalid, documented, invalid_from
from fraudring.settings import Settings
from realtime.idempotency import Remembered
from realtime.schemas import MAX_BATCH, BatchRequest, BatchResponse, Decision, Transaction
from realtime.service import Outcome

router = APIRouter(prefix="/v1", tags=["decisions"])
M = TypeVar("M", bound=BaseModel)

ERRORS = documented(401, 403, 409, 413, 422)


def body_schema(name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    return {"requestBody": body, **SECURITY_OPENAPI}


def parse(model: type[M], raw: bytes, s: Settings) -> M:
    try:
        return model.model_validate_json(raw, context=s.contract_context())
    except ValidationError as exc:
        raise invalid_from(exc.errors()) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes: nothing larger is read whole
    or parsed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge.limit(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge.limit(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def batch_length(raw: bytes) -> None:
    """The list length checked before any transaction is validated (a cheap count of the
    parsed JSON); a body that is not JSON is left to the validator's own message."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    items = doc.get("transactions") if isinstance(doc, dict) else None
    if isinstance(items, list) and len(items) > MAX_BATCH:
        raise RequestInvalid.on(
            "transactions", f"at most {MAX_BATCH} transactions per batch (got {len(items)})"
        )


def same_id_same_body(batch: BatchRequest) -> None:
    """Within one batch a txn_id repeated with another body is the same conflict as across
    requests (a repeat with the same body is a retry: it gets the first answer)."""
    seen: dict[str, str] = {}
    for txn in batch.transactions:
        h = txn.body_hash()
        if seen.setdefault(txn.txn_id, h) != h:
            Remembered(
                body_hash=seen[txn.txn_id],
                decision="approve",
                score=None,
                model_version=None,
                decided_at=0.0,
                degraded=False,
            ).check(txn.txn_id, h)


def _count(o: Outcome) -> None:
    metrics.count(decision=o.decision, degraded=o.degraded, replayed=o.replayed, rules=o.rules)


@router.post(
    "/decisions",
    response_model=Decision,
    summary="Decide on one transaction",
    description="Idempotent by `txn_id`: a retry with the same body returns the stored "
    "decision (header `Idempotent-Replay: true`); another body under a used `txn_id` gets 409.",
    openapi_extra=body_schema("Transaction"),
    responses=ERRORS,
)
async def create_decision(request: Request) -> Response:
    state = request.app.state  # no Depends: each dependency costs time on the hot path
    check_key(state.settings, request.headers.get("x-api-key"), "score")
    raw = await read_body(request, state.settings.max_body_bytes)
    txn = parse(Transaction, raw, state.settings)
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
    raw = await read_body(request, state.settings.max_body_bytes)
    batch_length(raw)
    batch = parse(BatchRequest, raw, state.settings)
    same_id_same_body(batch)
    bodies = []
    for txn in batch.transactions:
        outcome = await state.engine.decide(txn)
        _count(outcome)
        bodies.append(outcome.body)
    return Response(b'{"decisions":[' + b",".join(bodies) + b"]}", media_type="application/json")
