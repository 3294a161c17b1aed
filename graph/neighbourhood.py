"""The k-hop neighbourhood of an entity, for investigators.

Breadth-first over the backend's internal node keys, one query per side per hop, so a hop across
all entity kinds is one seek-based query; the first hop shares its query with the start node's
lookup, so a 2-hop is two round trips (each round trip is another chance of a scheduling stall
in the tail on a small machine); entities are expanded small kinds first so the node
cap stops the walk before a hub's customers are read. Rows are read as plain scalars and the
nodes and edges built with `model_construct`: every value is converted here (int, float, the
store's own strings), and validating 400 models again was a fifth of a 2-hop's time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, cast

from fraudring.errors import InvalidInput
from graph import queries as q
from graph.schemas import (
    KIND_OF_LABEL,
    LABELS,
    LINKED_KINDS,
    EntityKind,
    EntityRef,
    GraphEdge,
    GraphNode,
    GraphNotFound,
    Neighbourhood,
    check_kind,
    is_receipt,
    require_id,
)

if TYPE_CHECKING:
    from graph.cypher import CypherBackend, Rows


def neighbourhood(
    store: CypherBackend,
    kind: str,
    id: str,
    *,
    hops: int,
    max_nodes: int,
    follow: Collection[str] | None,
) -> Neighbourhood:
    """Breadth-first k-hop neighbourhood, stopping at `max_nodes`.

    `follow` lists the entity kinds to traverse (default all); users are always traversed,
    since every edge runs between a user and an entity.
    """
    kind = check_kind(kind)
    require_id(id, field_name="id")
    if not 1 <= hops <= 6:
        raise InvalidInput("hops: must be between 1 and 6")
    if not 1 <= max_nodes <= 10_000:
        raise InvalidInput("max_nodes: must be between 1 and 10000")
    kinds = set(LINKED_KINDS) if follow is None else {check_kind(k) for k in follow}
    kinds.discard("user")
    labels = [LABELS[k] for k in LINKED_KINDS if k in kinds]
    first = store._read_scalars(
        q.first_hop(kind, store.key_function), {"id": id, "labels": labels, "limit": max_nodes}
    )
    if not first:
        raise GraphNotFound(f"{kind} {id!r} is not in the graph")
    head = first[0]
    nodes: dict[tuple[str, str], GraphNode] = {
        (kind, id): GraphNode(kind=kind, id=id, props=_start_props(id, head))
    }
    edges: dict[tuple[str, str, str], GraphEdge] = {}
    found: Rows = []
    for r in first:  # nulls where the start has no edge (OPTIONAL MATCH)
        hop = r[len(q.NODE_PROPS) + 1 :]
        if kind == "user" and hop[2] is not None:
            found.append([hop[0], KIND_OF_LABEL[hop[1]], *hop[2:]])
        elif kind != "user" and hop[0] is not None:
            found.append([hop[0], kind, id, *hop[2:]])
    from_users, from_entities = q.hops(store.key_function)
    frontier: list[tuple[str, str, Any]] = []
    truncated = False
    for hop_i in range(hops):
        if hop_i > 0:
            if not frontier or truncated:
                break
            found = _expand(
                store,
                frontier,
                labels=labels,
                limit=max_nodes - len(nodes) + 1,
                queries=(from_users, from_entities),
            )
        nxt: list[tuple[str, str, Any]] = []
        for row in found:
            uid, ekind, eid, n, cents, fraud_n, first_seen, last, lab, ftx, key = row
            user_side = ("user", uid) not in nodes
            other = ("user", uid) if user_side else (ekind, eid)
            if other not in nodes:
                if len(nodes) >= max_nodes:
                    truncated = True
                    continue
                nodes[other] = GraphNode.model_construct(
                    kind=cast(EntityKind, other[0]),
                    id=other[1],
                    props={"fraud_label": lab, "fraud_txn_n": ftx},
                )
                nxt.append((other[0], other[1], key))
            edges[(uid, ekind, eid)] = GraphEdge.model_construct(
                user_id=uid,
                kind=ekind,
                entity_id=eid,
                n=int(n or 0),
                amount_sum=int(cents or 0) / 100,
                fraud_n=int(fraud_n or 0),
                first_seen=float(first_seen or 0),
                last_seen=float(last or 0),
            )
        frontier = nxt
    mark_payee_accounts(nodes, edges.values())
    return Neighbourhood(
        start=EntityRef(kind=kind, id=id),
        hops=hops,
        nodes=list(nodes.values()),
        edges=list(edges.values()),
        truncated=truncated,
    )


def mark_payee_accounts(
    nodes: dict[tuple[str, str], GraphNode], edges: Iterable[GraphEdge]
) -> None:
    """A merchant node some user receives at (an edge without amount: payments have one) is
    that payee's account: its props name the owner (`account_of`), so pictures and exports
    tell money moved between accounts from shopping."""
    for e in edges:
        node = nodes.get(("merchant", e.entity_id))
        if e.kind == "merchant" and is_receipt(e.amount_sum) and node is not None:
            node.props["account_of"] = e.user_id


def _expand(
    store: CypherBackend,
    frontier: list[tuple[str, str, Any]],
    *,
    labels: list[str],
    limit: int,
    queries: tuple[str, str],
) -> Rows:
    """One hop from the frontier (kind, id, key): rows as (user id, entity kind, entity id,
    edge columns, fraud label and count of the node reached, its key)."""
    from_users, from_entities = queries
    users = [key for k, _i, key in frontier if k == "user"]
    # entity key -> (kind, id), small kinds first so the row limit cuts the hubs
    ents = {key: (k, i) for k, i, key in sorted(frontier, key=_rank) if k != "user"}
    found: Rows = []
    if users and labels:
        params = {"keys": users, "labels": labels, "limit": limit}
        rows = store._read_scalars(from_users, params)
        found += [[r[0], KIND_OF_LABEL[r[1]], *r[2:]] for r in rows]
    if ents:
        rows = store._read_scalars(from_entities, {"keys": list(ents), "limit": limit})
        found += [[r[0], *ents[r[1]], *r[2:]] for r in rows]
    return found


_ORDER: dict[str, int] = {k: i for i, k in enumerate(LINKED_KINDS)}


def _rank(node: tuple[str, str, Any]) -> int:
    return _ORDER.get(node[0], -1)


def _start_props(id: str, row: list[Any]) -> dict[str, float | int | str | None]:
    """The start node's properties as `properties(n)` has them: its id and those set."""
    props: dict[str, float | int | str | None] = {"id": id}
    for name, value in zip(q.NODE_PROPS, row, strict=False):
        if value is not None:
            props[name] = float(value) if name == "labelled_at" else value
    return props
