"""The review queue (decisions that answered `review`, oldest first, with their explanation,
transaction and ring) and the ring list's search and filters."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import Workbench
from api.workbench.labels import LabelIn, LabelOut, label
from fraudring.errors import NotFound
from graph.history import LedgerTxn
from graph.repository import GraphStore
from graph.schemas import Ring

#: A resolved review's record is kept at least this long (the page still shows the decision).
RESOLVED_KEEP_S = 3600


class ReviewItem(BaseModel):
    txn_id: str
    decided_at: float
    decision: dict[str, Any] | None = Field(
        description="the stored decision (kept for the idempotency window, 48 h by default)"
    )
    txn: LedgerTxn | None = Field(description="from the graph's ledger, once ingested")
    ring: Ring | None = None


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    total: int


async def decision(eng: Workbench, txn_id: str) -> dict[str, Any]:
    body = await eng.stored(txn_id)
    if body is None:
        raise NotFound(f"no decision for txn {txn_id!r} (unknown, or past the idempotency window)")
    return body


def _bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


async def review_queue(
    st: GraphStore | None, eng: Workbench, *, limit: int, offset: int
) -> ReviewPage:
    # older reviews leave unresolved: their record (the explanation) expired with them
    old: list[Any] = await eng.redis.zrangebyscore(
        eng.keys.review_queue, "-inf", time.time() - eng.settings.review_keep_s
    )
    if old:
        await eng.redis.zrem(eng.keys.review_queue, *old)
    total = await eng.redis.zcard(eng.keys.review_queue)
    rows: list[Any] = await eng.redis.zrange(
        eng.keys.review_queue, offset, offset + limit - 1, withscores=True
    )
    ids = [(r[0].decode() if isinstance(r[0], bytes) else r[0], float(r[1])) for r in rows]
    bodies = [await eng.stored(i) for i, _ in ids]
    txns = await run_in_threadpool(st.txns_by_id, [i for i, _ in ids]) if st and ids else {}
    rings: dict[str, Ring] = {}
    items = []
    for (tid, at), body in zip(ids, bodies, strict=True):
        ring = None
        rid = ((body or {}).get("explanation") or {}).get("ring") or {}
        if st is not None and rid.get("ring_id"):
            if rid["ring_id"] not in rings:
                with contextlib.suppress(NotFound):
                    rings[rid["ring_id"]] = await run_in_threadpool(st.ring, rid["ring_id"])
            ring = rings.get(rid["ring_id"])
        items.append(
            ReviewItem(txn_id=tid, decided_at=at, decision=body, txn=txns.get(tid), ring=ring)
        )
    return ReviewPage(items=items, total=int(total))


async def resolve(
    st: GraphStore, eng: Workbench, txn_id: str, body: LabelIn, *, who: str
) -> LabelOut:
    """Label the reviewed transaction and take it off the queue; its record keeps the rest of
    its idempotency window (at least `RESOLVED_KEEP_S`) instead of the review's."""
    decided_at = await eng.redis.zscore(eng.keys.review_queue, txn_id)
    if decided_at is None:
        raise NotFound(f"txn {txn_id!r} is not in the review queue")
    out = await label(st, eng, body.model_copy(update={"kind": "txn", "id": txn_id}), who=who)
    left = float(decided_at) + eng.settings.idempotency_ttl_s - time.time()
    pipe = eng.redis.pipeline(transaction=True)  # the label's audit event says how
    pipe.zrem(eng.keys.review_queue, txn_id)
    pipe.expire(eng.keys.decision(txn_id), max(int(left), RESOLVED_KEEP_S), lt=True)
    await pipe.execute()
    return out


class RingsPage(BaseModel):
    rings: list[Ring]
    typology: dict[str, str] = Field(description="ring id -> the typology it resembles")
    total: int


#: The typology a ring resembles, per version of the ring (its evidence takes a few queries).
_TYPOLOGY: dict[tuple[str, float], str] = {}


async def _typology(st: GraphStore, ring: Ring) -> str:
    key = (ring.id, ring.updated_at)
    if len(_TYPOLOGY) > 20_000:  # rings rescored many times: start over rather than grow
        _TYPOLOGY.clear()
    if key not in _TYPOLOGY:
        ev = await run_in_threadpool(st.ring_evidence, ring.id)
        _TYPOLOGY[key] = ev.typology
    return _TYPOLOGY[key]


async def search_rings(
    st: GraphStore,
    *,
    q: str | None,
    min_size: int,
    max_size: int | None,
    min_risk: float,
    typology: str | None,
    new_since: float | None,
    suspicious_only: bool,
    limit: int,
    offset: int,
) -> RingsPage:
    """Rings by risk, filtered; `q` matches a ring id, a member or a shared entity's id."""
    rings = await run_in_threadpool(st.all_rings, min_size=min_size)
    rings.sort(key=lambda r: (-r.risk, r.id))
    if q:
        rings = [
            r
            for r in rings
            if q in r.id or q in r.members or any(q == e.id for e in r.shared_entities)
        ]
    rings = [
        r
        for r in rings
        if (max_size is None or r.size <= max_size)
        and r.risk >= min_risk
        and (new_since is None or r.created_at >= new_since)
        and (r.suspicious or not suspicious_only)
    ]
    kinds: dict[str, str] = {}
    if typology is not None:
        kept = []
        for r in rings:
            kinds[r.id] = await _typology(st, r)
            if kinds[r.id] == typology:
                kept.append(r)
        rings = kept
    page = rings[offset : offset + limit]
    for r in page:
        kinds[r.id] = kinds.get(r.id) or await _typology(st, r)
    return RingsPage(rings=page, typology={r.id: kinds[r.id] for r in page}, total=len(rings))
