"""Block, allow and step-up lists: entries per entity with an expiry, honoured by the very next
decision (the decision's Lua call reads ``{p}list:{kind}:{id}`` of its five entities).

An entry is one key that Redis expires itself, so an expired block can never decline; the
``{p}lists`` index (kind:id by expiry) only serves listing and is pruned as it is read. Every
change is recorded in the audit stream with who, when and why. A block declines, a step-up
asks for review as `step_up`, an allow approves unless something is blocked.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field

from fraudring.contract.ids import EntityKind
from fraudring.errors import InvalidInput, NotFound
from realtime.audit import audit
from realtime.keys import LIST_ACTIONS, Keys, ListEntry
from realtime.schemas import EntityId

ListAction = Literal["block", "allow", "step_up"]
ListKind = EntityKind
ACTIONS: tuple[str, ...] = LIST_ACTIONS
#: The longest a list entry may last (a year): lists are for incidents, not forever.
MAX_TTL_S = 366 * 86400


class ListTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ListKind
    id: EntityId


class ListEntryOut(BaseModel):
    kind: str
    id: str
    action: str
    list: str
    reason: str
    by: str
    at: float
    expires_at: float
    case_id: str | None = None
    ring_id: str | None = None

    @classmethod
    def of(cls, e: ListEntry) -> ListEntryOut:
        return cls(
            kind=e.kind,
            id=e.id,
            action=e.action,
            list=e.list_name,
            reason=e.reason,
            by=e.by,
            at=e.at,
            expires_at=e.expires_at,
            case_id=e.case_id,
            ring_id=e.ring_id,
        )


class ListsPage(BaseModel):
    entries: list[ListEntryOut]
    total: int = Field(description="entries matching the filters, all pages")


def _check_ttl(ttl_s: float) -> int:
    if not 60 <= ttl_s <= MAX_TTL_S:
        raise InvalidInput.on("ttl_s", f"must be between 60 and {MAX_TTL_S} seconds")
    return int(ttl_s)


async def put(
    client: redis.asyncio.Redis,
    keys: Keys,
    targets: list[ListTarget],
    *,
    action: ListAction,
    ttl_s: float,
    reason: str,
    by: str,
    case_id: str | None = None,
    ring_id: str | None = None,
) -> list[ListEntry]:
    """Write entries (replacing an entity's earlier entry) and audit them, in one transaction."""
    ttl = _check_ttl(ttl_s)
    if action not in ACTIONS:
        raise InvalidInput.on("action", f"must be one of {', '.join(ACTIONS)}")
    if not reason.strip():
        raise InvalidInput.on("reason", "required: say why, it is kept with the entry")
    now = time.time()
    entries = [
        ListEntry(
            kind=t.kind,
            id=t.id,
            action=action,
            reason=reason,
            by=by,
            at=now,
            expires_at=now + ttl,
            case_id=case_id,
            ring_id=ring_id,
        )
        for t in targets
    ]
    pipe = client.pipeline(transaction=True)
    for e in entries:
        pipe.set(keys.list_entry(e.kind, e.id), e.dumps(), ex=ttl)
        pipe.zadd(keys.lists_index, {f"{e.kind}:{e.id}": e.expires_at})
    await pipe.execute()
    await audit(
        client,
        keys,
        who=by,
        what=f"list.{action}",
        why=reason,
        target=",".join(f"{e.kind}:{e.id}" for e in entries[:50]),
        detail={"n": len(entries), "ttl_s": ttl, "case_id": case_id, "ring_id": ring_id},
    )
    return entries


async def get(client: redis.asyncio.Redis, keys: Keys, kind: str, id: str) -> ListEntry:
    raw = await client.get(keys.list_entry(kind, id))
    entry = ListEntry.loads(raw) if raw else None
    if entry is None:
        raise NotFound(f"{kind} {id!r} is on no list")
    return entry


async def remove(
    client: redis.asyncio.Redis, keys: Keys, kind: str, id: str, *, by: str, reason: str
) -> ListEntry:
    entry = await get(client, keys, kind, id)
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.list_entry(kind, id))
    pipe.zrem(keys.lists_index, f"{kind}:{id}")
    await pipe.execute()
    await audit(
        client, keys, who=by, what="list.remove", why=reason, target=f"{kind}:{id}", detail={}
    )
    return entry


async def entries(
    client: redis.asyncio.Redis,
    keys: Keys,
    *,
    action: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ListsPage:
    """Live entries, soonest expiry first, filtered; the expired are pruned from the index."""
    now = time.time()
    await client.zremrangebyscore(keys.lists_index, "-inf", now)
    raw_refs: list[Any] = await client.zrange(keys.lists_index, 0, -1)
    refs = [r.decode() if isinstance(r, bytes) else str(r) for r in raw_refs]
    if kind is not None:
        refs = [r for r in refs if r.split(":", 1)[0] == kind]
    raws = await client.mget([keys.list_entry(*r.split(":", 1)) for r in refs]) if refs else []
    found = [e for raw in raws if raw and (e := ListEntry.loads(raw)) is not None]
    if action is not None:
        found = [e for e in found if e.action == action]
    page = found[offset : offset + limit]
    return ListsPage(entries=[ListEntryOut.of(e) for e in page], total=len(found))


def _until(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def apply(decision: str, listed: list[ListEntry]) -> tuple[str, list[dict[str, Any]], list[str]]:
    """The decision after the lists: (outcome, rules to add to the explanation, notes). A block
    declines, a step-up raises to review, an allow approves when nothing is blocked."""
    now = time.time()
    live = [e for e in listed if e.expires_at > now]
    if not live:
        return decision, [], []
    rules: list[dict[str, Any]] = []
    notes: list[str] = []
    for e in live:
        verb = {"block": "decline", "step_up": "review", "allow": "approve"}[e.action]
        rules.append({"name": f"{e.list_name}:{e.kind}:{e.id}", "action": verb, "score": None})
        name = e.list_name.replace("_", " ")
        notes.append(
            f"{e.kind} {e.id} is on the {name} until {_until(e.expires_at)} (by {e.by}: {e.reason})"
        )
    actions = {e.action for e in live}
    if "block" in actions:
        decision = "decline"
    elif "step_up" in actions and decision == "approve":
        decision = "review"
    elif actions == {"allow"}:
        decision = "approve"
    return decision, rules, notes
