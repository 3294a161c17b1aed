"""One error base class with an HTTP status; domains subclass it, the API has one handler."""

from __future__ import annotations

from typing import Any, ClassVar, Self


class FraudringError(Exception):
    """Base of every error the project raises on purpose.

    `status_code` is what the API answers with; the CLI prints `message` without a traceback.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "message": self.message,
            **({"detail": self.detail} if self.detail else {}),
        }


class InvalidInput(FraudringError):
    status_code = 422
    code = "invalid_input"

    @classmethod
    def on(cls, field: str, reason: str, **extra: Any) -> Self:
        """One field's error in the API's 422 shape (`detail.errors`, a list of {field, reason}),
        whichever layer finds it, so a caller parses every 422 the same way."""
        item = {"field": field, "reason": reason, **extra}
        return cls(f"{field}: {reason}", detail={"errors": [item]})


def validation_reason(msg: str) -> str:
    """A pydantic error message without the prefix pydantic puts before a validator's own text."""
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


class NotFound(FraudringError):
    status_code = 404
    code = "not_found"


class Unauthorized(FraudringError):
    status_code = 401
    code = "unauthorized"


class Forbidden(FraudringError):
    status_code = 403
    code = "forbidden"


class Conflict(FraudringError):
    status_code = 409
    code = "conflict"


class Unavailable(FraudringError):
    status_code = 503
    code = "unavailable"
