"""Block / allow / step-up a ring or an entity: first what it touches (the blast radius), then
list entries with an expiry that the next decision honours (realtime.lists)."""

from __future__ import annotations

from typing import Literal

from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import Workbench
from fraudring.contract.ids import EntityKind
from fraudring.errors import Forbidden
from graph.repository import GraphStore
from realtime import cases, lists
from realtime.keys import ListEntry
from realtime.lists import ListAction, ListEntryOut, ListTarget
from realtime.schemas import EntityId

Scope = Literal["members", "members_and_shared", "shared"]
#: List actions only an `admin` key may apply (an allow lets a transaction through).
ADMIN_ACTIONS = ("block", "allow")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ListAction
    ring_id: EntityId | None = Field(default=None, description="a ring, or kind + id")
    kind: EntityKind | None = None
    id: EntityId | None = None
    scope: Scope = Field(
        default="members_and_shared",
        description="for a ring: its accounts, the cards/devices/IPs/merchants tying them, or both",
    )
    ttl_s: float = Field(default=7 * 86400, ge=60, le=lists.MAX_TTL_S)
    reason: str = Field(default="", max_length=2000)
    case_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> ActionIn:
        if (self.ring_id is None) == (self.kind is None or self.id is None):
            raise ValueError("give either ring_id or both kind and id")
        return self


class Preview(BaseModel):
    action: str
    targets: list[ListTarget]
    counts: dict[str, int] = Field(description="entities to list, per kind")
    collateral_accounts: int = Field(
        description="accounts outside the ring that use a listed card/device/IP/merchant"
    )
    decisions_last_day: int = Field(
        description="transactions of the listed accounts in the graph's last 24 h"
    )
    legitimate_looking: list[str] = Field(
        description="listed accounts with no fraud on record (labelled legitimate or unlabelled)"
    )
    already_listed: list[ListEntryOut]


class Applied(BaseModel):
    preview: Preview
    entries: list[ListEntryOut]


async def preview(st: GraphStore, eng: Workbench, body: ActionIn) -> Preview:
    targets: list[ListTarget] = []
    collateral = 0
    accounts: list[str] = []
    legit: list[str] = []
    if body.ring_id is not None:
        ev = await run_in_threadpool(st.ring_evidence, body.ring_id)
        if body.scope != "shared":
            accounts = list(ev.ring.members)
            targets += [ListTarget(kind="user", id=m) for m in accounts]
            legit = [m.id for m in ev.members if not m.fraud]
        if body.scope != "members":
            targets += [ListTarget(kind=x.kind, id=x.id) for x in ev.links]
            collateral = sum(x.others for x in ev.links)
    else:
        assert body.kind is not None and body.id is not None
        ent = await run_in_threadpool(st.entity_evidence, body.kind, body.id)
        targets.append(ListTarget(kind=body.kind, id=body.id))
        if body.kind == "user":
            accounts = [body.id]
            legit = [] if ent.fraud_txn_n or ent.label == "fraud" else [body.id]
        else:
            collateral = ent.degree
    newest = await run_in_threadpool(st.newest_ts)
    recent = 0
    for a in accounts[:200]:
        page = await run_in_threadpool(st.transactions, "user", a, limit=1000)
        recent += sum(1 for t in page.transactions if newest and t.ts >= newest - 86400)
    counts: dict[str, int] = {}
    for t in targets:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    pipe = eng.redis.pipeline(transaction=False)
    for t in targets:
        pipe.get(eng.keys.list_entry(t.kind, t.id))
    found = [ListEntry.loads(r) for r in await pipe.execute() if r]
    return Preview(
        action=body.action,
        targets=targets,
        counts=counts,
        collateral_accounts=collateral,
        decisions_last_day=recent,
        legitimate_looking=legit,
        already_listed=[ListEntryOut.of(e) for e in found if e is not None],
    )


async def apply(
    st: GraphStore, eng: Workbench, body: ActionIn, *, who: str, scopes: frozenset[str]
) -> Applied:
    if body.action in ADMIN_ACTIONS and "admin" not in scopes:
        raise Forbidden(f"a {body.action} list entry needs a key with the 'admin' scope")
    if body.case_id is not None:
        await cases.get_case(eng.redis, eng.keys, body.case_id)
    pre = await preview(st, eng, body)
    entries = await lists.put(
        eng.redis,
        eng.keys,
        pre.targets,
        action=body.action,
        ttl_s=body.ttl_s,
        reason=body.reason,
        by=who,
        case_id=body.case_id,
        ring_id=body.ring_id,
    )
    if body.case_id is not None:
        await cases.add_event(
            eng.redis,
            eng.keys,
            body.case_id,
            type="action",
            who=who,
            why=body.reason,
            detail={"action": body.action, "counts": pre.counts, "ttl_s": body.ttl_s},
        )
    return Applied(preview=pre, entries=[ListEntryOut.of(e) for e in entries])
