"""A minimal pipelined RESP client for the two hot-path scripts.

redis-py spends ~0.1 ms of CPU per command (pool checkout, argument encoding, a task per read for
the timeout). Here one connection per process carries every in-flight request: commands are
packed by hiredis, written at once, and replies are matched to waiters in order, so a timed-out
call simply abandons its future (the reply still arrives and is dropped) without resetting the
connection. Anything else (ping, streams, replay) keeps using redis-py. Plain TCP or unix
sockets; TLS URLs fall back to redis-py (see `supports`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def supports(url: str) -> bool:
    return urlsplit(url).scheme in {"redis", "unix"}


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: Any = None  # asyncio's or uvloop's transport
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = self.waiters.popleft()
            if fut.done():
                continue  # its caller timed out
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(ResponseError(str(reply)))
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or RedisConnectionError("connection closed by server")
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(RedisConnectionError(f"connection lost: {self.lost}"))


class RespScripts:
    """EVALSHA over one shared, pipelined connection, with a per-call timeout."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._unix = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db = parts.path.strip("/") if parts.scheme == "redis" else ""
        self._db = int(db) if db else 0
        self._timeout = timeout_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._unix:
            _, proto = await loop.create_unix_connection(_Protocol, self._unix)
        else:
            _, proto = await loop.create_connection(_Protocol, self._host, self._port)
        setup: list[tuple[Any, ...]] = []
        if self._password is not None:
            auth = ("AUTH", self._user, self._password) if self._user else ("AUTH", self._password)
            setup.append(auth)
        if self._db:
            setup.append(("SELECT", self._db))
        for cmd in setup:
            await self._send(proto, hiredis.pack_command(cmd))
        return proto

    async def _conn(self) -> _Protocol:
        proto = self._proto
        if proto is not None and proto.lost is None:
            return proto
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proto is None or self._proto.lost is not None:
                async with asyncio.timeout(self._timeout):
                    self._proto = await self._connect()
            return self._proto

    @staticmethod
    def _send(proto: _Protocol, packed: bytes) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proto.waiters.append(fut)
        proto.transport.write(packed)
        return fut

    async def evalsha(self, script: str, sha: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; loads it on NOSCRIPT. Redis errors come as redis-py exceptions."""
        try:
            async with asyncio.timeout(self._timeout):
                proto = await self._conn()
                cmd = ("EVALSHA", sha, len(keys), *keys, *args)
                try:
                    return await self._send(proto, hiredis.pack_command(cmd))
                except ResponseError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    cmd = ("EVAL", script, len(keys), *keys, *args)
                    return await self._send(proto, hiredis.pack_command(cmd))
        except TimeoutError:
            raise RedisTimeoutError(f"no answer within {self._timeout * 1000:.0f} ms") from None
        except OSError as exc:
            raise RedisConnectionError(str(exc)) from None

    async def execute(self, *args: Any) -> Any:
        """Any other command over the same connection (the cluster router's CLUSTER SLOTS)."""
        try:
            async with asyncio.timeout(self._timeout):
                proto = await self._conn()
                return await self._send(proto, hiredis.pack_command(args))
        except TimeoutError:
            raise RedisTimeoutError(f"no answer within {self._timeout * 1000:.0f} ms") from None
        except OSError as exc:
            raise RedisConnectionError(str(exc)) from None

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


__all__ = ["NoScriptError", "RespScripts", "sha1", "supports"]
