"""A path between two nodes that an investigator can read as a tie.

Two members of a ring are both customers of a big shop, and through a shared phone: the plain
shortest path is as likely to name the shop as the phone, and the shop says nothing. So the path
is first searched breadth-first over the entities that tie few accounts (devices, IPs and cards
with at most `hub_cap` distinct users, the ring rule's cap, counted over all time); only when no
such path exists within `queries.PATH_MAX_HOPS` is the plain shortest path returned, flagged
`through_hubs`. The ends themselves may be anything (a path to a merchant ends there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graph import queries as q
from graph.schemas import KIND_OF_LABEL, LINKED_KINDS, EntityRef, GraphPath, check_kind, require_id

if TYPE_CHECKING:
    from graph.repository import CypherStore

Node = tuple[str, str]
#: Nodes a search visits before giving up on the tied path (then the plain one is tried).
MAX_VISITED = 20_000
_CHUNK = 5_000


def _exists(store: CypherStore, ref: EntityRef) -> bool:
    return bool(store._read(q.NODE_EXISTS[ref.kind], {"id": ref.id}))


def _step(
    store: CypherStore, frontier: list[Node], *, dst: Node, cap: int
) -> list[tuple[Node, Node]]:
    """(from, to) pairs one hop out of `frontier`, through tying entities only."""
    out: list[tuple[Node, Node]] = []
    users = sorted(i for k, i in frontier if k == "user")
    for i in range(0, len(users), _CHUNK):
        args = {"ids": users[i : i + _CHUNK], "dst": dst[1], "cap": cap}
        for uid, label, eid, deg in store._read(q.PATH_USER_STEP, args):
            node = (KIND_OF_LABEL[label], str(eid))
            if node == dst or (node[0] != "merchant" and int(deg) <= cap):
                out.append((("user", str(uid)), node))
    for kind in LINKED_KINDS:
        ids = sorted(i for k, i in frontier if k == kind)
        for i in range(0, len(ids), _CHUNK):
            for eid, uid in store._read(q.PATH_ENTITY_STEP[kind], {"ids": ids[i : i + _CHUNK]}):
                out.append(((kind, str(eid)), ("user", str(uid))))
    return sorted(out)


def tied_path(store: CypherStore, *, src: Node, dst: Node, cap: int) -> list[Node] | None:
    """Shortest path avoiding merchants and hubs (breadth-first), None when there is none."""
    parent: dict[Node, Node | None] = {src: None}
    frontier = [src]
    for _hop in range(q.PATH_MAX_HOPS):
        if not frontier or dst in parent or len(parent) > MAX_VISITED:
            break
        nxt = []
        for a, b in _step(store, frontier, dst=dst, cap=cap):
            if b not in parent:
                parent[b] = a
                nxt.append(b)
        frontier = nxt
    if dst not in parent:
        return None
    path = [dst]
    while (p := parent[path[-1]]) is not None:
        path.append(p)
    return path[::-1]


def path(store: CypherStore, *, src: EntityRef, dst: EntityRef, hub_cap: int) -> GraphPath:
    require_id(src.id, field_name="src")
    require_id(dst.id, field_name="dst")
    if not (_exists(store, src) and _exists(store, dst)):
        return GraphPath(nodes=[], length=0, note="an end is not in the graph")
    found = tied_path(store, src=(src.kind, src.id), dst=(dst.kind, dst.id), cap=hub_cap)
    if found is not None:
        refs = [EntityRef(kind=check_kind(k), id=i) for k, i in found]
        return GraphPath(nodes=refs, length=len(refs) - 1)
    rows = store._read(store._path_query(src.kind, dst.kind), {"a": src.id, "b": dst.id})
    if not rows or rows[0][0] is None:
        return GraphPath(nodes=[], length=0, note=f"no path within {q.PATH_MAX_HOPS} hops")
    refs = [EntityRef(kind=KIND_OF_LABEL[lab], id=i) for lab, i in rows[0][0]]
    return GraphPath(
        nodes=refs,
        length=len(refs) - 1,
        through_hubs=True,
        note=f"no path through devices, IPs or cards of at most {hub_cap} accounts within "
        f"{q.PATH_MAX_HOPS} hops: this one goes through a merchant or a hub",
    )
