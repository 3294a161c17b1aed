"""The API's error answers: one handler for FraudringError, one for validation errors.

Validation errors name the field and the reason and never echo the input (FastAPI's default 422
includes it, which would send a refused card number straight back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from fraudring.errors import FraudringError, InvalidInput


class RequestInvalid(InvalidInput):
    code = "invalid_input"


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _reason(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err.get("type") == "json_invalid":
        return "body is not valid JSON"
    return msg


def invalid_from(errors: Sequence[Any]) -> RequestInvalid:
    """Field + reason for each error; the offending input is never included."""
    items = [{"field": _field(e.get("loc", ())), "reason": _reason(e)} for e in errors]
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

    app.add_exception_handler(FraudringError, on_fraudring)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
