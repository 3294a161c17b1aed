"""The pipelined RESP client of the hot path: ordering, NOSCRIPT, abandoned calls, reconnects."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.resp import RespScripts, sha1, supports
from tests.support.realtime import own_redis

ECHO = "return ARGV[1]"


def test_concurrent_calls_get_their_own_replies_even_after_a_timeout(tmp_path: Path) -> None:
    with own_redis(tmp_path / "r") as server:
        rs = RespScripts(server.url, timeout_s=0.05)
        blocker = server.client()

        async def go() -> None:
            got = await asyncio.gather(
                *(rs.evalsha(ECHO, sha1(ECHO), [], [str(i)]) for i in range(200))
            )
            assert got == [str(i).encode() for i in range(200)]  # first call: NOSCRIPT, loaded
            blocker.execute_command("CLIENT", "PAUSE", "200", "ALL")
            t0 = time.perf_counter()
            with pytest.raises(RedisTimeoutError):
                await rs.evalsha(ECHO, sha1(ECHO), [], ["late"])
            assert time.perf_counter() - t0 < 0.15
            await asyncio.sleep(0.3)  # the abandoned reply arrives and is dropped
            assert await rs.evalsha(ECHO, sha1(ECHO), [], ["next"]) == b"next"
            with pytest.raises(ResponseError):
                await rs.evalsha("return redis.call('NOPE')", sha1("x"), [], [])
            server.stop()
            with pytest.raises(RedisConnectionError):
                await rs.evalsha(ECHO, sha1(ECHO), [], ["down"])
            server.start()
            assert await rs.evalsha(ECHO, sha1(ECHO), [], ["back"]) == b"back"
            rs.close()

        asyncio.run(go())


def test_db_and_scheme(redis_url: str, redis_prefix: str) -> None:
    assert supports("redis://h:1/2") and supports("unix:///tmp/r.sock")
    assert not supports("rediss://h:1/0")
    url = redis_url.rsplit("/", 1)[0] + "/3"
    rs = RespScripts(url, timeout_s=1)
    key = f"{redis_prefix}db3"

    async def go() -> None:
        await rs.evalsha("return redis.call('SET', KEYS[1], 'x')", sha1("s"), [key], [])
        rs.close()

    asyncio.run(go())
    client = redis.Redis.from_url(url)
    assert client.get(key) == b"x"
    client.delete(key)
