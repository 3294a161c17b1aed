"""The API's error answers: one handler for FraudringError, one for validation errors.

Validation errors name the field and the reason and never echo the input (FastAPI's default 422
includes it, which would send a refused card number straight back). Every route documents the
error answers it can give with `documented`, in the shape they really have (`ErrorBody`), so a
generated client parses them instead of expecting FastAPI's default validation error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudring.errors import FraudringError, InvalidInput, Unavailable, validation_reason
from fraudring.logs import get_logger

log = get_logger(__name__)


class RequestInvalid(InvalidInput):
    code = "invalid_input"


class BodyTooLarge(FraudringError):
    status_code = 413
    code = "body_too_large"

    @classmethod
    def limit(cls, limit: int) -> BodyTooLarge:
        return cls(f"request body larger than {limit} bytes (setting max_body_bytes)")


class ErrorBody(BaseModel):
    """Every error answer (FraudringError.to_dict)."""

    error: str = Field(description="A stable code: invalid_input, unauthorized, not_found, ...")
    message: str = Field(description="For people; for 422 it lists `field: reason` pairs.")
    detail: dict[str, Any] | None = Field(
        default=None,
        description="For 422: `errors`, a list of {field, reason}; the input is never echoed.",
    )


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "missing or unknown API key",
    403: "the API key lacks this route's scope",
    404: "no such resource",
    409: "the txn_id is being decided right now (retry), or was decided for another body",
    413: "request body larger than the max_body_bytes setting",
    422: "invalid input: each error names the field and the reason",
    503: "a dependency (graph store, Redis) is not available",
}


HTTP_CODES: dict[int, str] = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def documented(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses; `descriptions` overrides by `e404=...`."""
    return {
        code: {
            "model": ErrorBody,
            "description": descriptions.get(f"e{code}", ERROR_DESCRIPTIONS[code]),
        }
        for code in codes
    }


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _reason(err: Any) -> str:
    if err.get("type") == "json_invalid":
        return "body is not valid JSON"
    if err.get("type") == "extra_forbidden":
        return "unknown field (its name is not repeated: it could hold anything)"
    return validation_reason(str(err.get("msg", "invalid")))


def _where(err: Any) -> str:
    """The field's path; for an unknown field, the object that holds it (the name itself is
    input too: a card number sent as a field name must not come back)."""
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        loc = loc[:-1]
    return _field(loc)


def invalid_from(errors: Sequence[Any]) -> RequestInvalid:
    """Field + reason for each error; the offending input is never included."""
    items = [{"field": _where(e), "reason": _reason(e)} for e in errors]
    message = "; ".join(f"{i['field']}: {i['reason']}" for i in items[:5])
    return RequestInvalid(message, detail={"errors": items})


def error_response(exc: FraudringError) -> Response:
    return Response(
        orjson.dumps(exc.to_dict()), status_code=exc.status_code, media_type="application/json"
    )


def install(app: FastAPI) -> None:
    async def on_fraudring(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FraudringError)
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return error_response(invalid_from(exc.errors()))

    async def on_http(_: Request, exc: Exception) -> Response:
        """Starlette's own answers (no such route, wrong method, a body FastAPI could not
        read) in the same shape as ours."""
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not JSON
            return error_response(invalid_from([{"loc": ("body",), "type": "json_invalid"}]))
        code = HTTP_CODES.get(exc.status_code, "http_error")
        body = {"error": code, "message": str(exc.detail)}
        return Response(
            orjson.dumps(body),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/json",
        )

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        """A bug answers in the same shape as everything else (never plain text); the logs
        carry the details, the client only that it was not its fault."""
        log.error("api.unexpected_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        body = {"error": "internal_error", "message": "internal error; the server logged it"}
        return Response(orjson.dumps(body), status_code=500, media_type="application/json")

    app.add_exception_handler(Exception, on_unexpected)

    async def on_redis(_: Request, exc: Exception) -> Response:
        """Redis down or slow for an investigator route (decisions degrade instead)."""
        return error_response(Unavailable(f"Redis unavailable: {exc}"))

    app.add_exception_handler(RedisError, on_redis)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(FraudringError, on_fraudring)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
