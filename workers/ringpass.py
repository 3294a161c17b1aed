"""One ring pass at a time across the drains of the stream's partitions, shared between them.

Two passes over one ring at once would each rewrite it from what it was before the other, so
passes are serialised by a lease. Serialised passes of small batches would then cost each pass's
fixed part once per partition, so they are shared: a drain adds its touched users to a set, then
takes the lease, and the holder runs one pass over everyone waiting. A drain whose users a
previous holder took finds them gone when its turn comes, and that pass has finished: the lease
is exclusive and the users were taken under it. The users a holder takes stay in an in-flight
set until its pass is done, so the next holder redoes them if it was killed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

from redis.exceptions import LockError

from fraudring.errors import Unavailable

T = TypeVar("T")

#: everything waiting joins what a killed holder left in flight; all of it is returned
_LUA_TAKE = """
redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
redis.call('DEL', KEYS[1])
return redis.call('SMEMBERS', KEYS[2])
"""


@contextlib.contextmanager
def ring_lease(pipe: Any) -> Iterator[None]:
    """Held for the pass (at most the lease period, so a killed holder is replaced), waited for
    up to a third of it (a drain's own lease is renewed between batches); Unavailable if it
    stays taken."""
    s = pipe.settings
    lock = pipe.client.lock(
        pipe.keys.meta("lease:rings"),
        timeout=s.ingest_lease_s,
        blocking_timeout=max(1.0, s.ingest_lease_s / 3),
        sleep=0.01,  # the default polls every 100 ms: a pass is often shorter than that
    )
    if not lock.acquire():
        raise Unavailable("the ring pass is taken by another drain")
    try:
        yield
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def shared_pass(pipe: Any, users: Collection[str], run: Callable[[set[str]], T], *, empty: T) -> T:
    """`run` over `users` and whoever else waits, once; `empty` if another holder did ours."""
    waiting, flight = pipe.keys.meta("rings:waiting"), pipe.keys.meta("rings:in_flight")
    if users:
        pipe.client.sadd(waiting, *users)
    with ring_lease(pipe):
        raw = pipe.client.eval(_LUA_TAKE, 2, waiting, flight)
        taken = {u.decode() if isinstance(u, bytes) else str(u) for u in raw or []}
        if not taken:
            return empty
        out = run(taken)
        pipe.client.delete(flight)
        return out
