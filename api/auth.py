"""API keys: header X-API-Key, stored as sha256 in settings.api_keys with their scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from fraudring.errors import Forbidden, Unauthorized
from fraudring.settings import Settings

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; scopes: score, investigate, admin."
)


def check_key(settings: Settings, key: str | None, scope: str) -> None:
    """The check itself; the decision routes call it directly (a dependency costs ~0.1 ms)."""
    if not key:
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    scopes = settings.scopes_for(key)
    if scopes is None:
        raise Unauthorized("unknown API key")
    if scope not in scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")


#: OpenAPI for routes that call `check_key` themselves.
SECURITY_OPENAPI: dict[str, list[dict[str, list[str]]]] = {"security": [{"APIKeyHeader": []}]}


def require(scope: str) -> Callable[..., Awaitable[frozenset[str]]]:
    """A dependency: 401 without a known key, 403 when the key lacks `scope`."""

    async def check(request: Request, key: str | None = Security(API_KEY_HEADER)) -> frozenset[str]:
        settings: Settings = request.app.state.settings
        check_key(settings, key, scope)
        return settings.scopes_for(key or "") or frozenset()

    return check


def caller(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency like `require`, giving the key's name: who labels, acts and writes cases."""

    async def check(request: Request, key: str | None = Security(API_KEY_HEADER)) -> str:
        settings: Settings = request.app.state.settings
        check_key(settings, key, scope)
        return settings.key_name(key or "")

    return check
