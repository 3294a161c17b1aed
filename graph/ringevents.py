"""A ring's history, kept as events: appeared, grew, shrank, split, merged, dissolved.

Each detection run compares the rings it read (`old`: id -> members) with those it writes (the
ids `assign_ids` keeps stable) and records what changed as `RingEvent` nodes in the
graph, in the same write as the rings (one transaction on Neo4j). Events are keyed by ring id,
not attached to the ring node, so a ring merged away or dissolved keeps its history.

Where members went is read from overlaps: a removed ring is `merged_into` the new ring holding
most of its members (and that ring records `merged`), or `dissolved` when none holds any; a ring
with a new id carved out of a ring that lives on is a `split_off` of it (which records `split`);
a new id sharing no member with an old ring `appeared`. Members joining or leaving otherwise make
`grew` and `shrank`. A run with no change writes nothing; a full run deletes the events older
than `KEEP_S`. An event's id is its change (the ring, the kind, the members before and after,
the rings involved), so two runs seeing the same change at once (a worker's and a label's
rescoring) keep one event; a ring going back and forth through the very same memberships keeps
only the first of the repeats.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graph.schemas import RingEvent, RingEventKind

#: Events older than this are deleted by full runs (a ring's history is bounded, not kept forever).
KEEP_S = 400 * 86400

#: id -> (created_at, members) of the rings a run read
OldRings = dict[str, tuple[float, list[str]]]


def new_ring_id(members: Iterable[str]) -> str:
    return "ring-" + hashlib.sha1(min(members).encode(), usedforsecurity=False).hexdigest()[:12]


def assign_ids(comps: Sequence[Sequence[str]], old: OldRings) -> list[str]:
    """Stable ids of the member lists `comps`: the old ring sharing most members wins, ties go
    to the oldest ring (then the smaller id), each old id at most once; else a new id."""
    # A user can be in two rings (a flagged ring inside its label-free component): count every
    # ring of each member, so the answer does not depend on the order the store read them in.
    owners: dict[str, list[str]] = {}
    for rid, (_, members) in old.items():
        for m in members:
            owners.setdefault(m, []).append(rid)
    candidates = []
    for ci, comp in enumerate(comps):
        counts = Counter(rid for m in comp for rid in owners.get(m, ()))
        candidates += [(-c, old[rid][0], rid, ci) for rid, c in counts.items()]
    candidates.sort()
    ids: list[str | None] = [None] * len(comps)
    used: set[str] = set()
    for _c, _created, rid, ci in candidates:
        if ids[ci] is None and rid not in used:
            ids[ci] = rid
            used.add(rid)
    for ci, comp in enumerate(comps):
        if ids[ci] is None:
            base = candidate = new_ring_id(comp)
            k = 2
            while candidate in used:
                candidate, k = f"{base}-{k}", k + 1
            ids[ci] = candidate
            used.add(candidate)
    return [i for i in ids if i is not None]


def _best(members: set[str], candidates: Mapping[str, set[str]]) -> str | None:
    """The candidate sharing most of `members` (ties: the smaller id), None if none shares."""
    scored = [(-len(members & ms), rid) for rid, ms in candidates.items() if members & ms]
    return min(scored)[1] if scored else None


def diff(
    old: Mapping[str, Sequence[str]],
    new: Mapping[str, Sequence[str]],
    *,
    at: float,
    as_of: float,
) -> list[RingEvent]:
    """The events that take the rings `old` to the rings `new` (both: id -> members)."""
    before = {rid: set(ms) for rid, ms in old.items()}
    after = {rid: set(ms) for rid, ms in new.items()}
    gone = {rid: ms for rid, ms in before.items() if rid not in after}
    fresh = {rid: ms for rid, ms in after.items() if rid not in before}
    kept = {rid: ms for rid, ms in before.items() if rid in after}
    into = {rid: _best(ms, after) for rid, ms in gone.items()}
    source = {rid: _best(ms, kept) for rid, ms in fresh.items()}
    events: list[RingEvent] = []

    def add(rid: str, kind: RingEventKind, **kw: Any) -> None:
        size = len(after.get(rid, ()))
        # two runs at once (a worker's and a label's rescoring) see the same change once
        seen = repr((rid, kind, sorted(before.get(rid, ())), sorted(after.get(rid, ())), kw))
        eid = "rev-" + hashlib.sha1(seen.encode(), usedforsecurity=False).hexdigest()[:20]
        events.append(
            RingEvent(id=eid, ring_id=rid, kind=kind, at=at, as_of=as_of, size=size, **kw)
        )

    for rid in sorted(after):
        ms = after[rid]
        prior = before.get(rid, set())
        absorbed = sorted(o for o, t in into.items() if t == rid)
        merged_in = sorted((ms - prior) & set().union(*(gone[o] for o in absorbed)))
        if rid in fresh:
            src = source[rid]
            if src is not None:
                add(rid, "split_off", joined=sorted(ms), related=[src])
            elif not absorbed:
                add(rid, "appeared", joined=sorted(ms))
        if absorbed:
            add(rid, "merged", joined=merged_in, related=absorbed)
        if rid in fresh:
            continue
        pieces = sorted(n for n, s in source.items() if s == rid)
        split_out = sorted((prior - ms) & set().union(*(after[n] for n in pieces)))
        if pieces:
            add(rid, "split", left=split_out, related=pieces)
        if grown := sorted(ms - prior - set(merged_in)):
            add(rid, "grew", joined=grown)
        if shrunk := sorted(prior - ms - set(split_out)):
            add(rid, "shrank", left=shrunk)
    for rid in sorted(gone):
        target = into[rid]
        if target is not None:
            add(rid, "merged_into", left=sorted(gone[rid]), related=[target])
        else:
            add(rid, "dissolved", left=sorted(gone[rid]))
    for seq, e in enumerate(events):
        e.seq = seq
    return events


def props(events: Sequence[RingEvent]) -> list[dict[str, Any]]:
    """Node properties of `events` (the graph's `RingEvent.ring` is the ring's id)."""
    return [{**e.model_dump(exclude={"ring_id"}), "ring": e.ring_id} for e in events]


def from_props(p: Mapping[str, Any]) -> RingEvent:
    return RingEvent(
        id=p.get("id") or "",
        ring_id=p["ring"],
        kind=p["kind"],
        at=float(p["at"]),
        as_of=float(p["as_of"]),
        seq=int(p.get("seq") or 0),
        size=int(p.get("size") or 0),
        joined=list(p.get("joined") or []),
        left=list(p.get("left") or []),
        related=list(p.get("related") or []),
    )
