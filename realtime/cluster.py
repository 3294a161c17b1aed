"""The decision's velocity, risk and statistics on Redis Cluster: one script call per entity.

A standalone Redis runs realtime.velocity's single script over the five entities' keys. Redis
Cluster refuses a script whose keys span slots, so here every entity's keys share its hash tag
(``{kind:id}``, realtime.keys) and the work splits by entity: the same windows, read then
applied, in one call per entity, the calls issued concurrently (one round trip per slot). The
entities' keys are disjoint, so the split computes exactly what the single script does.

The decision key (idempotency) and the decision stream stay on `Settings.redis_url` (one Redis,
with the Celery broker): the claim is made there first, so a retry never counts twice, and the
decision is stored and streamed there atomically as before. A decision through the cluster is
therefore three round trips (claim, entities, record) instead of two.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from typing import Any, Final
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from fraudring.contract.transaction import Transaction
from realtime.keys import (
    ENTITY_KINDS,
    MERCHANT_STATS_SIZE,
    USER_STATS_SIZE,
    EntityStats,
    Keys,
    ListEntry,
)
from realtime.resp import RespScripts, sha1, supports
from realtime.velocity import (
    DECISION_TTL_S,
    PENDING_TTL_S,
    REVIEW_TTL_S,
    State,
    VelocityStore,
    _num,
    _risk,
)
from realtime.velocity_lua import _LUA_BOUNDS, LUA_WINDOWS

#: per entity: 6 sums, 3 seen counts, last, 3 first uses, risk, stats, 4 user windows
ENTITY_OUT: Final = 19

# KEYS (one entity, one slot): 1 min, 2 hour, 3 risk, 4 stats, 5 last, 6..8 seen sets the entity
# owns (user: devices, cards, ips; card / device / ip: users), 9 day, 10 spike.
# ARGV[1] tab-joined: 1 kind index (1 user .. 5 merchant), 2 ts, 3 amount, 4 minute bucket,
# 5 hour bucket, 6 ts-7d, 7 ts-30d, 8..10 seen members ('' when absent), 11 spike member.
LUA_ENTITY: Final = (
    _LUA_BOUNDS
    + r"""
local A = {}
for part in string.gmatch(ARGV[1] .. '\t', '([^\t]*)\t') do A[#A + 1] = part end
local e = tonumber(A[1])
local ts_s = A[2]
local ts = tonumber(A[2])
local amount = A[3]
local bm = tonumber(A[4])
local bh = tonumber(A[5])
local since7 = A[6]
local since30 = A[7]
local members = {A[8], A[9], A[10]}
"""
    + LUA_WINDOWS
    + r"""
local hour_keep, hour_ttl = 23, TTL_HOUR_SHORT
if e <= 2 then hour_keep, hour_ttl = 167, TTL_HOUR_LONG end
local n1, a1, _, _, sm = sum_hash(KEYS[1], bm - 59, bm, bm - 59)
local n24, a24, n7, a7, sh = sum_hash(KEYS[2], bh - 23, bh, bh - hour_keep)
local out = {fmt(n1), fmt(a1), fmt(n24), fmt(a24), fmt(n7), fmt(a7)}
local nseen = 1
if e == 1 then nseen = 3 elseif e == 5 then nseen = 0 end
for s = 1, 3 do
  if s <= nseen then
    out[#out + 1] = fmt(redis.call('ZCOUNT', KEYS[5 + s], since7, '+inf'))
  else
    out[#out + 1] = ''
  end
end
local last = nil
if e == 1 then
  last = redis.call('GET', KEYS[5])
  if last then out[#out + 1] = fmt(ts - tonumber(last)) else out[#out + 1] = '' end
  for s = 1, 3 do
    if members[s] ~= '' then
      local sc = redis.call('ZSCORE', KEYS[5 + s], members[s])
      if sc and tonumber(sc) >= tonumber(since30) then out[#out + 1] = '0'
      else out[#out + 1] = '1' end
    else
      out[#out + 1] = ''
    end
  end
else
  for _ = 1, 4 do out[#out + 1] = '' end
end
bump(KEYS[1], bm, e == 1, TTL_MIN, sm)
bump(KEYS[2], bh, e ~= 5, hour_ttl, sh)
for s = 1, nseen do
  if members[s] ~= '' then seen_write(KEYS[5 + s], members[s]) end
end
if e == 1 and ((not last) or ts > tonumber(last)) then
  redis.call('SET', KEYS[5], ts_s, 'EX', TTL_LAST)
end
out[#out + 1] = redis.call('GET', KEYS[3]) or ''
local st = ''
if e == 1 or e == 5 then st = redis.call('GET', KEYS[4]) or '' end
out[#out + 1] = st
if e == 1 then user_windows_at(out, st, KEYS[9], KEYS[10], A[11]) end
return out
"""
)

# KEYS: 1 decision. ARGV: 1 pending ttl. The head of realtime.velocity's decide script.
LUA_CLAIM: Final = r"""
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == 'pending' then return {'pending'} end
  return {'dup', cur}
end
redis.call('SET', KEYS[1], 'pending', 'EX', ARGV[1])
return {'ok'}
"""

#: the seen sets each kind owns (as windows of realtime.keys.Keys.velocity), in script order
_SEEN: Final = {
    "user": ("seen:device", "seen:card", "seen:ip"),
    "card": ("seen:user",),
    "device": ("seen:user",),
    "ip": ("seen:user",),
    "merchant": (),
}


def cluster_client(url: str, *, timeout_ms: int) -> RedisCluster:
    t = timeout_ms / 1000
    return RedisCluster.from_url(url, socket_timeout=t, socket_connect_timeout=t)


class SlotRouter:
    """EVALSHA to the node that owns the first key's slot, over one pipelined connection per
    node (realtime.resp): redis-py's cluster client costs ~1 ms of CPU per call, this ~0.05.
    The slot map is read with CLUSTER SLOTS and read again on MOVED / ASK (a resharding)."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._auth = url.split("@", 1)[0] + "@" if "@" in parts.netloc else f"{parts.scheme}://"
        self._seed = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
        self._timeout = timeout_s
        self._nodes: dict[str, RespScripts] = {}
        self._starts: list[int] = []
        self._owners: list[str] = []
        self._lock: asyncio.Lock | None = None

    def _node(self, addr: str) -> RespScripts:
        node = self._nodes.get(addr)
        if node is None:
            node = self._nodes[addr] = RespScripts(self._auth + addr, timeout_s=self._timeout)
        return node

    async def refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            ask = next(iter(self._nodes.values()), None) or self._node(self._seed)
            slots: Any = await ask.execute("CLUSTER", "SLOTS")
            table = []
            for entry in slots:
                host = entry[2][0].decode() if isinstance(entry[2][0], bytes) else entry[2][0]
                table.append((int(entry[0]), f"{host or '127.0.0.1'}:{int(entry[2][1])}"))
            table.sort()
            self._starts = [s for s, _ in table]
            self._owners = [a for _, a in table]

    async def evalsha(self, script: str, sha: str, keys: list[str], args: list[Any]) -> Any:
        if not self._starts:
            await self.refresh()
        for attempt in range(2):
            slot = key_slot(keys[0].encode())
            addr = self._owners[bisect.bisect_right(self._starts, slot) - 1]
            try:
                return await self._node(addr).evalsha(script, sha, keys, args)
            except ResponseError as exc:
                if attempt or not str(exc).startswith(("MOVED", "ASK")):
                    raise
                await self.refresh()
        raise AssertionError("unreachable")

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()


def router_for(url: str, *, timeout_ms: int) -> SlotRouter | None:
    """The fast router where realtime.resp speaks the URL (plain TCP), else None (redis-py)."""
    return SlotRouter(url, timeout_s=timeout_ms / 1000) if supports(url) else None


class ClusterVelocityStore(VelocityStore):
    """`VelocityStore` with the per-entity state on a cluster (see the module docstring)."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        *,
        cluster: RedisCluster,
        fast: RespScripts | None = None,
        router: SlotRouter | None = None,
        decision_ttl_s: int = DECISION_TTL_S,
        review_ttl_s: int = REVIEW_TTL_S,
    ) -> None:
        super().__init__(
            client, keys, fast=fast, decision_ttl_s=decision_ttl_s, review_ttl_s=review_ttl_s
        )
        self.cluster = cluster
        self.router = router
        self._claim = client.register_script(LUA_CLAIM)
        self._entity = cluster.register_script(LUA_ENTITY)
        self._claim_sha, self._entity_sha = sha1(LUA_CLAIM), sha1(LUA_ENTITY)

    def _entity_call(self, e: int, t: Transaction) -> Any:
        kind, ids = ENTITY_KINDS[e], t.ids
        k = self.keys
        seen = [k.velocity(kind, ids[e], w) for w in _SEEN[kind]]
        seen += [k.velocity(kind, ids[e], "seen:none")] * (3 - len(seen))
        keys = [
            k.velocity(kind, ids[e], "min"),
            k.velocity(kind, ids[e], "hour"),
            k.risk(kind, ids[e]),
            k.stats(kind, ids[e]),
            k.velocity(kind, ids[e], "last"),
            *seen,
            k.velocity(kind, ids[e], "day"),
            k.velocity(kind, ids[e], "spike"),
        ]
        # the user's devices, cards, ips; a card's, device's or ip's users
        members = (ids[2], ids[1], ids[3]) if e == 0 else (ids[0], "", "")
        ts = t.epoch
        fields = (
            str(e + 1),
            repr(ts),
            repr(t.amount),
            str(int(ts // 60)),
            str(int(ts // 3600)),
            repr(ts - 7 * 86400),
            repr(ts - 30 * 86400),
            *(members if kind != "merchant" else ("", "", "")),
            self.keys.decision(t.txn_id),
        )
        args = ["\t".join(fields)]
        if self.router is not None:
            return self.router.evalsha(LUA_ENTITY, self._entity_sha, keys, args)
        return self._entity(keys=keys, args=args)

    async def _entities(self, t: Transaction) -> list[list[bytes] | None]:
        present = [e for e, i in enumerate(t.ids) if i]
        res = await asyncio.gather(*(self._entity_call(e, t) for e in present))
        out: list[list[bytes] | None] = [None] * len(ENTITY_KINDS)
        for e, r in zip(present, res, strict=True):
            out[e] = list(r)
        return out

    async def decide(self, t: Transaction) -> State:
        keys, args = [self.keys.decision(t.txn_id)], [PENDING_TTL_S]
        if self.fast is not None:
            claim = await self.fast.evalsha(LUA_CLAIM, self._claim_sha, keys, args)
        else:
            claim = await self._claim(keys=keys, args=args)
        status = claim[0].decode() if isinstance(claim[0], bytes) else str(claim[0])
        if status == "dup":
            return State(status="dup", stored=claim[1])
        if status == "pending":
            return State(status="pending")
        per_entity, listed = await asyncio.gather(self._entities(t), self._lists(t))
        return dataclasses.replace(state_of(per_entity), lists=listed)

    async def _lists(self, t: Transaction) -> list[ListEntry]:
        """Block / allow / step-up entries live on the main Redis (few, written by people)."""
        ids = (t.user_id, t.card_id, t.device_id, t.ip, t.merchant_id)
        keys = [self.keys.list_entry(k, i) for k, i in zip(ENTITY_KINDS, ids, strict=True) if i]
        if not keys:
            return []
        raw = await self.client.mget(keys)
        listed = [ListEntry.loads(v) for v in raw if v]
        return [x for x in listed if x is not None]

    async def replay(
        self, t: Transaction, *, stored: bytes, record: bytes, review_at: float | None = None
    ) -> bool:
        """As the standalone replay, in steps: velocity is applied only if no decide ran."""
        cur = await self.client.get(self.keys.decision(t.txn_id))
        if cur is not None and cur != b"pending":
            return False
        if cur is None:
            await self._entities(t)
        return await self.record(
            txn_id=t.txn_id, user_id=t.user_id, stored=stored, record=record, review_at=review_at
        )


def state_of(per_entity: list[list[bytes] | None]) -> State:
    """The standalone script's answer, put together from the per-entity answers."""
    empty = [b""] * ENTITY_OUT
    user, card, device, ip, merchant = (o if o is not None else empty for o in per_entity)
    raw = [
        *(user[i] for i in (0, 2, 4, 1, 3, 5)),
        *(card[i] for i in (0, 2, 4, 3)),
        *(device[i] for i in (0, 2, 3)),
        *(ip[i] for i in (0, 2, 3)),
        merchant[0],
        merchant[2],
        *(user[i] for i in (6, 7, 8)),
        device[6],
        ip[6],
        card[6],
        *(user[i] for i in (9, 10, 11, 12)),
    ]
    risks = [_risk(o[13]) if o is not None else None for o in per_entity]
    stats = (
        EntityStats.loads(merchant[14], size=MERCHANT_STATS_SIZE) if merchant[14] else None,
        EntityStats.loads(user[14], size=USER_STATS_SIZE) if user[14] else None,
    )
    return State(
        status="ok",
        velocity=[_num(v) for v in raw],
        risks=risks,
        stats=stats,
        user_window=[_num(v) for v in user[15:19]],
    )
