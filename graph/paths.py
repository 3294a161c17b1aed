"""A path between two nodes that an investigator can read as a tie.

Two members of a ring are both customers of a big shop, and through a shared phone: the plain
shortest path is as likely to name the shop as the phone, and the shop says nothing. So the path
is searched breadth-first in tiers, each only when the one before finds nothing within
`evidence_queries.PATH_MAX_HOPS`:

1. devices, IPs and cards with at most `hub_cap` distinct users (the ring rule's cap, counted
   over all time here);
2. those and merchants with at most `merchant_cap` users (the shell shop a mule ring is tied
   through, which the ring rule links too);
3. anything, hubs included: the answer is flagged `through_hubs` and says so. This search stops
   after `MAX_VISITED` nodes (a hub's customers fill it at once): no path is then the answer.

The ends themselves may be anything (a path to a merchant ends there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph import evidence_queries as q
from graph.schemas import (
    KIND_OF_LABEL,
    LINKED_KINDS,
    EntityRef,
    GraphPath,
    check_kind,
    require_id,
)

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

Node = tuple[str, str]
#: Nodes a search visits before it gives up.
MAX_VISITED = 20_000
_CHUNK = 5_000
#: (merchants allowed, which cap) per tier; None: any entity
_TIERS: tuple[tuple[bool, str] | None, ...] = ((False, "hub"), (True, "merchant"), None)


def _exists(store: CypherBackend, ref: EntityRef) -> bool:
    return bool(store._read(q.NODE_EXISTS[ref.kind], {"id": ref.id}))


def _step(
    store: CypherBackend, frontier: list[Node], *, ends: set[Node], rule: tuple[bool, int] | None
) -> list[tuple[Node, Node]]:
    """(from, to) pairs one hop out of `frontier`, through the entities `rule` allows
    (merchants allowed, cap on an entity's users; None: all) or one of the path's `ends`."""
    out: list[tuple[Node, Node]] = []
    users = sorted(i for k, i in frontier if k == "user")
    for i in range(0, len(users), _CHUNK):
        ids = users[i : i + _CHUNK]
        if rule is None:
            rows = store._read(q.PATH_USER_ANY, {"ids": ids})
        else:
            ends_ids = sorted({e for _k, e in ends})
            args = {"ids": ids, "ends": ends_ids, "merchants": rule[0], "cap": rule[1]}
            rows = store._read(q.PATH_USER_STEP, args)
        for uid, label, eid, deg in rows:
            node = (KIND_OF_LABEL[label], str(eid))
            ok = rule is None or ((rule[0] or node[0] != "merchant") and int(deg) <= rule[1])
            if ok or node in ends:
                out.append((("user", str(uid)), node))
    for kind in LINKED_KINDS:
        ents = sorted(i for k, i in frontier if k == kind)
        for i in range(0, len(ents), _CHUNK):
            for eid, uid in store._read(q.PATH_ENTITY_STEP[kind], {"ids": ents[i : i + _CHUNK]}):
                out.append(((kind, str(eid)), ("user", str(uid))))
    return sorted(out)


def _walk(parent: dict[Node, Node | None], node: Node) -> list[Node]:
    out = [node]
    while (p := parent[out[-1]]) is not None:
        out.append(p)
    return out


def search(
    store: CypherBackend, *, src: Node, dst: Node, rule: tuple[bool, int] | None
) -> list[Node] | None:
    """Shortest path through the entities `rule` allows, None when none: breadth-first from
    both ends a whole level at a time, the smaller frontier first (a hub's customers are read
    only when the other side has no fewer to read)."""
    if src == dst:
        return [src]
    ends = {src, dst}
    parents: tuple[dict[Node, Node | None], dict[Node, Node | None]] = ({src: None}, {dst: None})
    frontiers = ([src], [dst])
    for _hop in range(q.PATH_MAX_HOPS):
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        mine, theirs = parents[side], parents[1 - side]
        if not frontiers[side] or len(mine) + len(theirs) > MAX_VISITED:
            return None
        nxt = []
        for a, b in _step(store, frontiers[side], ends=ends, rule=rule):
            if b not in mine:
                mine[b] = a
                nxt.append(b)
        met = sorted(n for n in nxt if n in theirs)
        if met:
            head, tail = _walk(parents[0], met[0]), _walk(parents[1], met[0])
            return head[::-1] + tail[1:]
        frontiers = (nxt, frontiers[1]) if side == 0 else (frontiers[0], nxt)
    return None


def path(
    store: CypherBackend, *, src: EntityRef, dst: EntityRef, hub_cap: int, merchant_cap: int
) -> GraphPath:
    require_id(src.id, field_name="src")
    require_id(dst.id, field_name="dst")
    if not (_exists(store, src) and _exists(store, dst)):
        return GraphPath(nodes=[], length=0, note="an end is not in the graph")
    caps = {"hub": hub_cap, "merchant": max(hub_cap, merchant_cap)}
    for tier in _TIERS:
        rule = None if tier is None else (tier[0], caps[tier[1]])
        found = search(store, src=(src.kind, src.id), dst=(dst.kind, dst.id), rule=rule)
        if found is None:
            continue
        refs = [EntityRef(kind=check_kind(k), id=i) for k, i in found]
        out = GraphPath(nodes=refs, length=len(refs) - 1)
        inner = {k for k, _ in found[1:-1]}
        if tier is None:
            out.through_hubs = True
            out.note = (
                f"no path through devices, IPs or cards of at most {hub_cap} accounts or "
                f"merchants of at most {caps['merchant']} within {q.PATH_MAX_HOPS} hops: this "
                "one goes through a hub"
            )
        elif "merchant" in inner:
            out.note = f"through a merchant of at most {caps['merchant']} accounts"
        return out
    return GraphPath(
        nodes=[], length=0, note=f"no path within {q.PATH_MAX_HOPS} hops (or past hubs)"
    )
