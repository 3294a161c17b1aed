"""Ring components inside Neo4j with Graph Data Science, where the server has it.

The linking entities and the users each ties (the same rule as `queries.ring_links`, so the
same links) are projected by a Cypher projection into an in-memory graph, and GDS WCC labels
each user with its component there, in parallel on the server, instead of a union-find over
every link in Python. The ring rule then runs per component (`graph.ringrule.bounded` with
these labels): the household cut, the size bound and the density still need the members'
links, which are read as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from neo4j.exceptions import ClientError

from fraudring.logs import get_logger
from graph import queries as q
from graph.cypher import CypherBackend
from graph.schemas import LABELS, LINKED_KINDS

log = get_logger(__name__)

#: Whether the server has the procedures used here.
AVAILABLE: Final = (
    "SHOW PROCEDURES YIELD name WHERE name IN ['gds.wcc.stream', 'gds.graph.drop'] "
    "RETURN count(*) = 2"
)
_RULE_PARAMS: Final = ("ip_min_n", "ip_share", "min_deg", "cap", "share")


def _pairs(kind: str) -> str:
    """The kind's linking query returning (entity, tied user) node pairs; its rule parameters
    are prefixed with the kind so that all kinds share one statement."""
    text = f"MATCH (x:{LABELS[kind]})" + q._link(kind)
    collect = "THEN u.id END) AS users"
    ret = "RETURN x.id, users"
    assert collect in text and ret in text
    text = text.replace(collect, "THEN u END) AS users")
    text = text.replace(ret, "UNWIND users AS u\nRETURN x, u")
    for name in _RULE_PARAMS:
        text = text.replace(f"${name}", f"${kind}_{name}")
    return text


def project_query(kinds: Sequence[str]) -> str:
    """One Cypher projection of the links of `kinds` (undirected: WCC ignores direction)."""
    union = "\nUNION ALL\n".join(_pairs(k) for k in kinds)
    return (
        f"CALL {{\n{union}\n}}\n"
        "WITH gds.graph.project($graph, x, u) AS g\n"
        "RETURN g.nodeCount, g.relationshipCount"
    )


WCC: Final = """
CALL gds.wcc.stream($graph) YIELD nodeId, componentId
WITH gds.util.asNode(nodeId) AS n, componentId
WHERE n:User
RETURN n.id, componentId
"""
DROP: Final = "CALL gds.graph.drop($graph, false) YIELD graphName RETURN graphName"


def components(
    store: CypherBackend, *, since: float, rules: dict[str, dict[str, Any]]
) -> dict[str, int] | None:
    """Component label of every linked user (WCC over the projected links); `rules` are the
    linking rule's parameters per kind (`graph.rings._rule`), kinds without links left out.
    None when the server refuses the procedures (e.g. GDS installed but not allowed): the
    caller computes the components itself."""
    try:
        return _components(store, since=since, rules=rules)
    except ClientError as exc:
        log.warning("graph.gds_failed", error=str(exc)[:300], fallback="python")
        return None


def _components(
    store: CypherBackend, *, since: float, rules: dict[str, dict[str, Any]]
) -> dict[str, int]:
    kinds = [k for k in LINKED_KINDS if k in rules]
    if not kinds:
        return {}
    name = f"fraudring-rings-{uuid.uuid4().hex}"
    args: dict[str, Any] = {"graph": name, "since": since}
    for kind in kinds:
        args |= {f"{kind}_{k}": v for k, v in rules[kind].items()}
    try:
        rows = store._write(project_query(kinds), args)
        if not rows or rows[0][0] is None:  # no links at all: nothing was projected
            return {}
        labels = {str(uid): int(comp) for uid, comp in store._read(WCC, {"graph": name})}
    finally:
        store._write(DROP, {"graph": name})
    log.debug("graph.gds_components", users=len(labels), components=len(set(labels.values())))
    return labels
