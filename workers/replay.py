"""The graph's durability against the decision stream: replay point, replay, gaps, trimming.

After each batch the graph records, in its own store, the first stream entry it has not applied
(the replay point). A graph server that loses its newest writes loses the point with them, so
the next drain reads it back, replays the stream from there (ingest is idempotent by txn_id) and
records it again; the schema is re-applied first, since a server that lost its data lost its
indexes too. The stream is trimmed only below every consumer group's acknowledgements, the
graph's replay point and the retention floor (which must outlast the graph store's own fsync
window). An entry the graph needs that the stream no longer holds is a gap: recorded in Redis,
alerted, and shown by `fraudring status` and /readyz until an operator accepts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from fraudring import streamids
from fraudring.logs import get_logger
from realtime.keys import DECISION_GROUP
from realtime.ops import frontiers
from workers import alerts
from workers.streams import Message, to_messages

log = get_logger(__name__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_after, _key = streamids.after, streamids.parse


def ingest_frontier(client: redis.Redis, stream: str) -> str | None:
    return frontiers(client, stream).get(DECISION_GROUP)


def record_point(pipe: Any, *, partition: int = 0) -> str | None:
    """After a batch was acknowledged: the graph records how far it has applied the partition."""
    stream = pipe.keys.decisions_partition(partition)
    point = ingest_frontier(pipe.client, stream)
    if point is not None:
        pipe.store.record_replay_point(stream, point)
    return point


@dataclass
class Recovery:
    point: str | None
    replayed: int = 0
    ingested: int = 0
    gap: dict[str, Any] | None = None


def recover(pipe: Any, *, apply: Callable[[list[Message]], int], partition: int = 0) -> Recovery:
    """Before a drain of a partition: re-apply the schema, then replay what the graph lost of it
    (if anything); `apply` writes a chunk of already acknowledged entries again and returns how
    many were new to the graph (the ingest step of workers.service, without dead-lettering or
    acking). Each partition has its own replay point (the graph keeps one per stream name)."""
    ensure = getattr(pipe.store, "ensure_schema", None)
    if ensure is not None:
        ensure()
    stream = pipe.keys.decisions_partition(partition)
    point = pipe.store.replay_point(stream) or "0-0"
    frontier = ingest_frontier(pipe.client, stream)
    out = Recovery(point=point)
    if frontier is None or _key(point) >= _key(frontier):
        return out
    out.gap = check_gap(pipe, point, partition=partition)
    start = point
    while True:
        entries = pipe.client.xrange(
            stream, min=start, max="(" + frontier, count=pipe.settings.ingest_batch
        )
        if not entries:
            break
        out.replayed += len(entries)
        out.ingested += apply(to_messages(entries))
        last = _text(entries[-1][0])
        pipe.store.record_replay_point(stream, _after(last))
        start = _after(last)
    pipe.store.record_replay_point(stream, frontier)
    if not out.replayed:
        return out
    log.warning(
        "graph.replayed", stream=stream, since=point, until=frontier, entries=out.replayed,
        ingested=out.ingested,
    )  # fmt: skip
    return out


def check_gap(pipe: Any, point: str, *, partition: int = 0) -> dict[str, Any] | None:
    """A gap: an entry at or after the graph's replay point was trimmed (XTRIM does not say
    what it removed, so `trim` records the newest entry it removes, `meta:stream_trimmed_to`,
    per partition). The last gap found, of any partition, is `meta:replay_gap`."""
    stream = pipe.keys.decisions_partition(partition)
    raw = pipe.client.get(pipe.keys.partition_meta("stream_trimmed_to", partition))
    if raw is None or _key(_text(raw)) < _key(point):
        return None
    first = pipe.client.xrange(stream, count=1)
    gap = {
        "stream": stream,
        "replay_point": point,
        "trimmed_to": _text(raw),
        "first_available": _text(first[0][0]) if first else None,
        "detected_at": time.time(),
    }
    pipe.client.set(pipe.keys.meta("replay_gap"), orjson.dumps(gap))
    alerts.publish(
        pipe.client, pipe.keys, kind="replay_gap", severity="high", ring_id=None,
        evidence=gap, dedupe=f"replay_gap:{stream}:{point}",
    )  # fmt: skip
    log.error("graph.replay_gap", **gap)
    return gap


def trim(
    pipe: Any, *, graph_point: str | None, partition: int = 0, now: float | None = None
) -> int:
    """XTRIM MINID a partition below every group's frontier, the graph's replay point of it and
    the retention floor; at most once per `stream_trim_every_s` across all workers. Returns
    entries removed."""
    s = pipe.settings
    if graph_point is None:
        return 0
    throttle = pipe.keys.partition_meta("stream_trimmed", partition)
    if not pipe.client.set(throttle, b"1", nx=True, px=int(s.stream_trim_every_s * 1000)):
        return 0
    stream = pipe.keys.decisions_partition(partition)
    floor_ms = int(((now if now is not None else time.time()) - s.stream_retention_s) * 1000)
    bounds = [*frontiers(pipe.client, stream).values(), graph_point, f"{max(floor_ms, 0)}-0"]
    minid = min(bounds, key=_key)
    last = pipe.client.xrevrange(stream, max="(" + minid, min="-", count=1)
    if not last:
        return 0
    # the newest entry removed, recorded first (only forward): a crash between the two
    # over-reports a gap, never hides one
    mark = pipe.keys.partition_meta("stream_trimmed_to", partition)
    old = pipe.client.get(mark)
    if old is None or _key(_text(old)) < _key(_text(last[0][0])):
        pipe.client.set(mark, last[0][0])
    removed = int(pipe.client.xtrim(stream, minid=minid, approximate=False))
    if removed:
        log.info("stream.trimmed", stream=stream, minid=minid, removed=removed)
    return removed
