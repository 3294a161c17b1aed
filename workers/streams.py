"""Consumer-group mechanics on Redis streams: read, reclaim, dead-letter, acknowledge.

At-least-once: a message stays pending in its group until acknowledged, and pending messages
of a consumer that died are claimed by the next reader once idle for ``claim_idle_ms``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from pydantic import ValidationError
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from fraudring.errors import validation_reason as reason_text
from fraudring.logs import get_logger
from realtime.keys import STREAM_CAP, Keys

log = get_logger(__name__)
RAW_LIMIT = 8192
#: How long a worker waits out a Redis that refuses connections (a restart takes about a second
#: plus its append-only file's replay) before a call fails: about 12 s over 15 tries.
REDIS_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=15)
#: Entries per stream command (read, claim, acknowledge). Redis runs one command at a time: a
#: read of a 5,000-decision batch held it for about 30 ms, past a decision's Redis budget
#: (`FRAUDRING_REDIS_TIMEOUT_MS`), and the API decided without velocity meanwhile.
READ_CHUNK = 500


def worker_redis(url: str) -> redis.Redis:
    """A client whose calls ride out a Redis restart: a drain that failed instead would need a
    retry published to that same Redis, and lose its partition's chain of drains."""
    return redis.Redis.from_url(
        url, retry=REDIS_RETRY, retry_on_error=[redis.ConnectionError, redis.TimeoutError]
    )


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    raw: bytes | None  # the ``d`` field; None when the entry lacks it
    #: times the group delivered it (more than 1: an earlier reader failed or died on it)
    deliveries: int = 1


def consumer_name() -> str:
    """Unique per process and thread, so a restarted worker never inherits a dead one's name."""
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 100_000}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _decode_id(raw_id: Any) -> str:
    return raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)


def to_messages(entries: list[Any]) -> list[Message]:
    out = []
    for raw_id, fields in entries:
        value = (fields or {}).get(b"d")
        out.append(Message(id=_decode_id(raw_id), raw=value))
    return out


def _with_deliveries(
    client: redis.Redis, stream: str, group: str, consumer: str, messages: list[Message]
) -> list[Message]:
    """Reclaimed messages with their delivery counts (only reclaims need them: a message that
    keeps failing is quarantined instead of retried forever)."""
    if not messages:
        return messages
    rows = client.xpending_range(
        stream,
        group,
        min=messages[0].id,
        max=messages[-1].id,
        count=len(messages),
        consumername=consumer,
    )
    counts = {_decode_id(r["message_id"]): int(r["times_delivered"]) for r in rows}
    return [Message(m.id, m.raw, counts.get(m.id, 1)) for m in messages]


def fetch(
    client: redis.Redis,
    *,
    stream: str,
    group: str,
    consumer: str,
    count: int,
    block_ms: int,
    claim_idle_ms: int,
) -> list[Message]:
    """Up to `count` messages: first those a dead consumer left pending, then new ones, in
    commands of at most `READ_CHUNK` entries."""
    messages: list[Message] = []
    res = client.xautoclaim(
        stream,
        group,
        consumer,
        min_idle_time=claim_idle_ms,
        start_id="0-0",
        count=min(count, READ_CHUNK),
    )
    claimed, deleted = res[1], (res[2] if len(res) > 2 else [])
    messages.extend(_with_deliveries(client, stream, group, consumer, to_messages(claimed)))
    if deleted:  # trimmed from the stream while pending: nothing left to process
        ack(client, stream, group, [_decode_id(d) for d in deleted])
    if messages:
        log.info("stream.reclaimed", stream=stream, n=len(messages))
    block = None if messages or block_ms <= 0 else block_ms
    while len(messages) < count:
        want = min(count - len(messages), READ_CHUNK)
        got: Any = client.xreadgroup(group, consumer, {stream: ">"}, count=want, block=block)
        entries = [e for _name, batch in got or [] for e in batch]
        messages.extend(to_messages(entries))
        if len(entries) < want:
            break
        block = None  # only the first read waits
    return messages


def ack(client: redis.Redis, stream: str, group: str, ids: list[str]) -> None:
    """Acknowledge `ids`, `READ_CHUNK` at a time."""
    for i in range(0, len(ids), READ_CHUNK):
        client.xack(stream, group, *ids[i : i + READ_CHUNK])


def validation_reason(exc: Exception) -> str:
    """One line naming each bad field, for the dead-letter record and the logs."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {reason_text(e['msg'])}"
            for e in exc.errors()
        )
    if isinstance(exc, orjson.JSONDecodeError):
        return f"malformed JSON: {exc}"
    return f"{type(exc).__name__}: {exc}"


def deadletter_messages(
    client: redis.Redis,
    keys: Keys,
    *,
    stream: str,
    group: str,
    bad: list[tuple[Message, str]],
) -> None:
    """Record each bad message with its reason and acknowledge it, atomically."""
    if not bad:
        return
    pipe = client.pipeline(transaction=True)
    now = time.time()
    for msg, reason in bad:
        raw = (msg.raw or b"")[:RAW_LIMIT].decode("utf-8", errors="replace")
        body = {
            "kind": "message",
            "stream": stream,
            "msg_id": msg.id,
            "raw": raw,
            "reason": reason,
            "attempts": 1,
            "at": now,
        }
        pipe.xadd(keys.deadletter, {"d": orjson.dumps(body)}, maxlen=STREAM_CAP, approximate=True)
    pipe.xack(stream, group, *[m.id for m, _ in bad])
    pipe.execute()
    for msg, reason in bad:
        log.warning("stream.deadlettered", stream=stream, msg_id=msg.id, reason=reason)
