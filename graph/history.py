"""An entity's transactions from the ledger, newest first in pages, and a ring's timeline.

Pages are keyed by time (`before`, the last row's ts of the previous page), so a page never
shifts while new transactions arrive. The ledger is read through the Txn.user index: an
entity other than a user is reached through its most active users (`MAX_USERS`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from fraudring.errors import InvalidInput
from graph import evidence_queries as eq
from graph import queries as q
from graph.schemas import GraphNotFound, Ring, RingEvent, RingEventKind, check_kind, require_id

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

#: Users through which a card, device, IP or merchant's transactions are read.
MAX_USERS = 500


class LedgerTxn(BaseModel):
    txn_id: str
    ts: float
    user_id: str
    card_id: str | None
    device_id: str | None
    ip: str | None
    merchant_id: str | None
    amount: float
    label: str | None
    labelled_by: str | None
    labelled_at: float | None


class TxnPage(BaseModel):
    kind: str
    id: str
    transactions: list[LedgerTxn]
    next_before: float | None = Field(description="pass as `before` for the next page")


class TimelineEvent(BaseModel):
    ts: float
    event: Literal["first_activity", "joined", "detected", "updated", "last_activity"] | (
        RingEventKind
    ) = Field(description="a ring event's kind (graph.ringevents) or a point of its activity")
    member: str | None = None
    members: list[str] = Field(
        default_factory=list, description="a ring event's members who joined or left"
    )
    related: list[str] = Field(default_factory=list, description="the other rings of the event")
    detail: str = ""


class DayActivity(BaseModel):
    day: str
    txn_n: int
    amount: float
    fraud_txn_n: int


class RingTimeline(BaseModel):
    ring_id: str
    events: list[TimelineEvent]
    days: list[DayActivity]
    changes: list[RingEvent] = Field(
        default_factory=list, description="the ring's recorded events, oldest first"
    )


def _said(e: RingEvent) -> str:
    who = ", ".join(e.joined or e.left)
    rel = ", ".join(e.related)
    return {
        "appeared": f"appeared with {e.size} members",
        "grew": f"grew to {e.size}: {who} joined",
        "shrank": f"shrank to {e.size}: {who} left",
        "split": f"split: {who} left into {rel}",
        "split_off": f"split off {rel} with {e.size} members",
        "merged": f"merged {rel} in, now {e.size}" + (f": {who} joined" if who else ""),
        "merged_into": f"merged into {rel}",
        "dissolved": "dissolved: no longer tied together",
    }[e.kind]


def ring_event(e: RingEvent) -> TimelineEvent:
    """A recorded ring event as a point of the timeline (at the detection run that saw it)."""
    return TimelineEvent(
        ts=e.at, event=e.kind, members=e.joined or e.left, related=e.related, detail=_said(e)
    )


def _txn(row: list[Any]) -> LedgerTxn:
    return LedgerTxn(
        txn_id=row[0],
        ts=float(row[1]),
        user_id=row[2],
        card_id=row[3],
        device_id=row[4],
        ip=row[5],
        merchant_id=row[6],
        amount=float(row[7]),
        label=row[8],
        labelled_by=row[9],
        labelled_at=None if row[10] is None else float(row[10]),
    )


def transactions(
    store: CypherBackend, kind: str, id: str, *, limit: int = 50, before: float | None = None
) -> TxnPage:
    kind = check_kind(kind)
    require_id(id, field_name="id")
    if not 1 <= limit <= 1000:
        raise InvalidInput.on("limit", "must be between 1 and 1000")
    if kind == "user":
        if not store._read(q.NODE_LABEL_READ["user"], {"id": id}):
            raise GraphNotFound(f"user {id!r} is not in the graph")
        users = [id]
    else:
        if not store._read(q.NODE_LABEL_READ[kind], {"id": id}):
            raise GraphNotFound(f"{kind} {id!r} is not in the graph")
        users = [
            r[0] for r in store._read(eq.ENTITY_USER_IDS[kind], {"id": id, "limit": MAX_USERS})
        ]
    params = {
        "users": users,
        "id": id,
        "before": 1e18 if before is None else float(before),
        "limit": limit,
    }
    rows = store._read(eq.txns_of(kind), params) if users else []
    txns = [_txn(r) for r in rows]
    nxt = txns[-1].ts if len(txns) == limit else None
    return TxnPage(kind=kind, id=id, transactions=txns, next_before=nxt)


def timeline(
    store: CypherBackend, ring: Ring, *, joined: dict[str, float], changes: list[RingEvent]
) -> RingTimeline:
    """Who joined when (first use of a tying entity), when the ring was detected and last
    updated, how it changed (its recorded events), and the members' transactions per day."""
    events = [
        TimelineEvent(ts=ring.first_activity, event="first_activity"),
        TimelineEvent(ts=ring.created_at, event="detected", detail=f"ring {ring.id}"),
        TimelineEvent(ts=ring.updated_at, event="updated", detail=f"{ring.size} members"),
        TimelineEvent(ts=ring.last_activity, event="last_activity"),
    ]
    events += [TimelineEvent(ts=t, event="joined", member=m) for m, t in joined.items()]
    events.sort(key=lambda e: (e.ts, e.event, e.member or ""))
    events = sorted([*events, *(ring_event(c) for c in changes)], key=lambda e: e.ts)
    days: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for m in ring.members:
        params = {"users": [m], "id": m, "before": 1e18, "limit": 100_000}
        for row in store._read(eq.txns_of("user"), params):
            d = days[datetime.fromtimestamp(float(row[1]), UTC).strftime("%Y-%m-%d")]
            d[0] += 1
            d[1] += float(row[7])
            d[2] += int(row[8] == "fraud")
    return RingTimeline(
        ring_id=ring.id,
        changes=changes,
        events=events,
        days=[
            DayActivity(day=k, txn_n=int(v[0]), amount=round(v[1], 2), fraud_txn_n=int(v[2]))
            for k, v in sorted(days.items())
        ],
    )


def txns_by_id(store: CypherBackend, ids: list[str]) -> dict[str, LedgerTxn]:
    """Ledger rows of the given transactions (those not ingested yet are missing)."""
    for i in ids:
        require_id(i, field_name="txn_id")
    return {r[0]: _txn(r) for r in store._read(eq.TXN_BY_ID, {"ids": ids})} if ids else {}
