"""Every Cypher statement of the project, shared by both backends unless marked otherwise.

Values always travel as parameters. The only text built here is structural and comes from
constants: node labels (from `schemas.LABELS`), the internal-id function of a backend and the
degree expression, all fixed at import time, never derived from input.
"""

from __future__ import annotations

from typing import Final

from graph.schemas import ENTITY_KINDS, LABELS

# --- ingest -----------------------------------------------------------------------------------
# One statement per batch, so the batch is atomic on FalkorDB (one query) and on Neo4j (one
# transaction). The guard makes it a no-op when any of its transactions is already stored (a
# concurrent writer got there first); the caller then re-reads the ledger and retries.
# Rows are positional lists (smaller parameter headers than maps):
#   users: [id, first_seen, last_seen, n, amount_sum]
#   edges: [user_id, entity_id, first_seen, last_seen, n, amount_sum]
#   txns:  [id, ts, user, card, device, ip, merchant, amount]

_GUARD = """
UNWIND $txn_ids AS tid
OPTIONAL MATCH (known:Txn {id: tid})
WITH count(known) AS existing
WHERE existing = 0
"""

_USERS = """
UNWIND $users AS r
MERGE (u:User {id: r[0]})
ON CREATE SET u.first_seen = r[1], u.last_seen = r[2], u.n = r[3], u.amount_sum = r[4],
  u.fraud_txn_n = 0, u.legit_txn_n = 0
ON MATCH SET u.first_seen = CASE WHEN r[1] < u.first_seen THEN r[1] ELSE u.first_seen END,
  u.last_seen = CASE WHEN r[2] > u.last_seen THEN r[2] ELSE u.last_seen END,
  u.n = u.n + r[3], u.amount_sum = u.amount_sum + r[4]
WITH count(*) AS done
"""

_EDGES = """
UNWIND ${kind} AS e
MATCH (u:User {{id: e[0]}})
MERGE (x:{label} {{id: e[1]}})
MERGE (u)-[r:USED]->(x)
ON CREATE SET r.first_seen = e[2], r.last_seen = e[3], r.n = e[4], r.amount_sum = e[5],
  r.fraud_n = 0, r.legit_n = 0
ON MATCH SET r.first_seen = CASE WHEN e[2] < r.first_seen THEN e[2] ELSE r.first_seen END,
  r.last_seen = CASE WHEN e[3] > r.last_seen THEN e[3] ELSE r.last_seen END,
  r.n = r.n + e[4], r.amount_sum = r.amount_sum + e[5]
WITH count(*) AS done
"""

_LEDGER = """
UNWIND $txns AS t
CREATE (:Txn {id: t[0], ts: t[1], user: t[2], card: t[3], device: t[4], ip: t[5],
  merchant: t[6], amount: t[7]})
RETURN count(*) AS written
"""

INGEST: Final = (
    _GUARD
    + _USERS
    + "".join(_EDGES.format(kind=k, label=LABELS[k]) for k in ENTITY_KINDS)
    + _LEDGER
)

KNOWN_TXNS: Final = "UNWIND $ids AS tid MATCH (t:Txn {id: tid}) RETURN t.id"

# --- labels -----------------------------------------------------------------------------------

TXN_LABEL_READ: Final = """
MATCH (t:Txn {id: $id})
RETURN t.user, t.card, t.device, t.ip, t.merchant, t.fraud_label
"""

# Guarded by the label read before, so two labellers racing cannot count twice.
TXN_LABEL_WRITE: Final = """
MATCH (t:Txn {id: $id})
WHERE coalesce(t.fraud_label, '') = $old
SET t.fraud_label = $label, t.labelled_by = $by, t.labelled_at = $at
WITH t
MATCH (u:User {id: t.user})
SET u.fraud_txn_n = coalesce(u.fraud_txn_n, 0) + $df,
  u.legit_txn_n = coalesce(u.legit_txn_n, 0) + $dl
WITH t, u
MATCH (u)-[r:USED]->(x)
WHERE (x:Card AND x.id = t.card) OR (x:Device AND x.id = t.device)
  OR (x:IP AND x.id = t.ip) OR (x:Merchant AND x.id = t.merchant)
SET r.fraud_n = coalesce(r.fraud_n, 0) + $df, r.legit_n = coalesce(r.legit_n, 0) + $dl,
  x.fraud_txn_n = coalesce(x.fraud_txn_n, 0) + $df,
  x.legit_txn_n = coalesce(x.legit_txn_n, 0) + $dl
RETURN count(r)
"""

NODE_LABEL_READ: Final = {
    k: f"MATCH (n:{lab} {{id: $id}}) RETURN n.fraud_label" for k, lab in LABELS.items()
}
NODE_LABEL_WRITE: Final = {
    k: f"""
MATCH (n:{lab} {{id: $id}})
WHERE coalesce(n.fraud_label, '') = $old
SET n.fraud_label = $label, n.labelled_by = $by, n.labelled_at = $at
RETURN count(n)
"""
    for k, lab in LABELS.items()
}

# --- rings ------------------------------------------------------------------------------------

NEWEST_TS: Final = "MATCH (u:User) RETURN max(u.last_seen)"


_MERCHANT_REPEAT = """
WITH x, count(u) AS total, collect(CASE WHEN r.n >= 2 THEN u.id END) AS users
WHERE size(users) >= 2 AND size(users) >= $share * total
"""
#: A user is tied to an IP only if based there (home, hideout), not passing through (office).
_IP_BASED = "AND r.n >= $ip_min_n AND r.n >= $ip_share * u.n"
_ANY_USERS = """
WITH x, collect(u.id) AS users
WHERE size(users) >= 2
"""


def ring_links(*, degree: str, page: str) -> dict[str, str]:
    """Per entity kind: eligible entities (all-time degree in [min_deg, cap]) and the users
    they link within the window; a merchant links only its repeat customers, and only when
    they are at least `share` of its recent customers (see graph.rings).

    `degree` is the backend's degree expression of `x` and `page` its paging predicate, both
    constants of the backend module.
    """
    out: dict[str, str] = {}
    for k in ENTITY_KINDS:
        out[k] = f"""
MATCH (x:{LABELS[k]})
WHERE {page} AND {degree} >= $min_deg AND {degree} <= $cap
MATCH (x)<-[r:USED]-(u:User)
WHERE r.last_seen >= $since {_IP_BASED if k == "ip" else ""}
{_MERCHANT_REPEAT if k == "merchant" else _ANY_USERS}
RETURN x.id, users
"""
    return out


def user_entities(*, degree: str) -> str:
    """Entities through which a set of users can be linked (the same rules as ring_links)."""
    return f"""
UNWIND $ids AS uid
MATCH (u:User {{id: uid}})-[r:USED]->(x)
WHERE r.last_seen >= $since AND (
  (x:Merchant AND r.n >= 2 AND {degree} <= $merchant_cap)
  OR (x:Card AND {degree} >= $card_min AND {degree} <= $cap)
  OR (x:Device AND {degree} >= 2 AND {degree} <= $cap)
  OR (x:IP AND {degree} >= 2 AND {degree} <= $cap {_IP_BASED}))
RETURN DISTINCT labels(x)[0], x.id
"""


ENTITY_USERS: Final = "\nUNION ALL\n".join(
    f"""
UNWIND ${k} AS eid
MATCH (x:{LABELS[k]} {{id: eid}})<-[r:USED]-(u:User)
WHERE r.last_seen >= $since {_IP_BASED if k == "ip" else ""}
{_MERCHANT_REPEAT if k == "merchant" else _ANY_USERS}
RETURN '{k}' AS kind, x.id AS id, users
"""
    for k in ENTITY_KINDS
)

USER_RINGS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[:IN_RING]->(g:Ring)
RETURN DISTINCT g.id, g.created_at, g.members
"""

ALL_RINGS: Final = "MATCH (g:Ring) RETURN g.id, g.created_at, g.members"

USER_STATS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})
RETURN u.id, u.first_seen, u.last_seen, u.n, u.amount_sum, u.fraud_label, u.fraud_txn_n
"""

RING_DELETE: Final = "UNWIND $ids AS rid MATCH (g:Ring {id: rid}) DETACH DELETE g"

RING_UNLINK: Final = "UNWIND $ids AS rid MATCH (:User)-[m:IN_RING]->(g:Ring {id: rid}) DELETE m"

RING_UPSERT: Final = """
UNWIND $rings AS p
MERGE (g:Ring {id: p.id})
SET g.size = p.size, g.suspicious = p.suspicious, g.members = p.members, g.shared = p.shared,
  g.density = p.density,
  g.fraud_n = p.fraud_n, g.fraud_rate = p.fraud_rate, g.amount = p.amount,
  g.account_age_days = p.account_age_days, g.first_activity = p.first_activity,
  g.last_activity = p.last_activity, g.risk = p.risk, g.created_at = p.created_at,
  g.updated_at = p.updated_at
RETURN count(g)
"""

RING_LINK: Final = """
UNWIND $pairs AS p
MATCH (u:User {id: p[0]})
MATCH (g:Ring {id: p[1]})
CREATE (u)-[:IN_RING]->(g)
RETURN count(*)
"""

RING_BY_ID: Final = "MATCH (g:Ring {id: $id}) RETURN properties(g)"
TOP_RINGS: Final = """
MATCH (g:Ring)
RETURN properties(g)
ORDER BY g.risk DESC, g.id
LIMIT $n
"""

# --- investigator queries ---------------------------------------------------------------------

NODE_PROPS: Final = {
    k: f"MATCH (n:{lab} {{id: $id}}) RETURN properties(n)" for k, lab in LABELS.items()
}

_EDGE_COLS = "r.n, r.amount_sum, r.fraud_n, r.first_seen, r.last_seen"

USER_HOP: Final = f"""
UNWIND $ids AS uid
MATCH (u:User {{id: uid}})-[r:USED]->(x)
WHERE labels(x)[0] IN $labels
RETURN uid, labels(x)[0], x.id, {_EDGE_COLS}, x.fraud_label, x.fraud_txn_n
LIMIT $limit
"""

#: Per kind, the users of a set of entities; queried kind by kind (small kinds first) so the
#: node cap stops the expansion before a hub is read.
ENTITY_HOP: Final = {
    k: f"""
UNWIND $ids AS eid
MATCH (x:{LABELS[k]} {{id: eid}})<-[r:USED]-(u:User)
RETURN u.id, '{k}', eid, {_EDGE_COLS}, u.fraud_label, u.fraud_txn_n
LIMIT $limit
"""
    for k in ENTITY_KINDS
}

#: Longest path searched; a bound must be literal in Cypher, so it is a constant.
PATH_MAX_HOPS: Final = 8


def path_query(*, src: str, dst: str, falkordb: bool) -> str:
    """Shortest USED path in either direction.

    FalkorDB's shortestPath() is directed only, so it uses its algo.SPpaths procedure; Neo4j
    takes the standard shortestPath pattern.
    """
    head = f"MATCH (a:{LABELS[src]} {{id: $a}}), (b:{LABELS[dst]} {{id: $b}})\n"
    if falkordb:
        return head + (
            "CALL algo.SPpaths({sourceNode: a, targetNode: b, relTypes: ['USED'], "
            f"maxLen: {PATH_MAX_HOPS}, relDirection: 'both', pathCount: 1}}) YIELD path\n"
            "RETURN [n IN nodes(path) | [labels(n)[0], n.id]]"
        )
    return head + (
        f"MATCH p = shortestPath((a)-[:USED*..{PATH_MAX_HOPS}]-(b))\n"
        "RETURN [n IN nodes(p) | [labels(n)[0], n.id]]"
    )


# --- export -----------------------------------------------------------------------------------
# Columns per node kind and per edge, with the backend's internal id to join them cheaply.

USER_EXPORT_COLS: Final = (
    "n.n",
    "n.amount_sum",
    "n.first_seen",
    "n.last_seen",
    "n.fraud_txn_n",
    "n.legit_txn_n",
)
ENTITY_EXPORT_COLS: Final = ("n.fraud_txn_n", "n.legit_txn_n")
EDGE_EXPORT_COLS: Final = ("r.n", "r.amount_sum", "r.fraud_n", "r.first_seen", "r.last_seen")
