"""The Cypher of the investigator's reads (graph.investigation, graph.history, graph.formats,
graph.paths): evidence, an entity's ledger rows, rings sharing an entity, paths. Values travel as
parameters; labels come from `schemas.LABELS`, constants."""

from __future__ import annotations

from typing import Final

from graph.schemas import LABELS, LINKED_KINDS, RECEIPT_AMOUNT

# --- evidence and history (graph.investigation) ---------------------------------------------

#: Per kind: every user of the given entities with the edge's figures (members and others; the
#: caller splits them), and the entity's own label.
EVIDENCE_LINKS: Final[dict[str, str]] = {
    k: f"""
UNWIND $ids AS eid
MATCH (x:{LABELS[k]} {{id: eid}})<-[r:USED]-(u:User)
RETURN x.id, u.id, r.first_seen, r.last_seen, r.n, r.fraud_n, r.amount_sum, x.fraud_label
"""
    for k in LINKED_KINDS
}

#: Per user: distinct entities used, by label (cards per account tells card testing apart).
USER_KIND_COUNTS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[r:USED]->(x)
RETURN u.id, labels(x)[0], count(x)
"""

#: An entity with its edges' totals (users, transactions, first/last seen) and labels.
ENTITY_SUMMARY: Final[dict[str, str]] = {
    k: (
        """
MATCH (n:User {id: $id})
OPTIONAL MATCH (n)-[a:ACTIVITY]->(n)
OPTIONAL MATCH (n)-[r:USED]->()
RETURN n.fraud_label, n.labelled_by, n.labelled_at, n.fraud_txn_n, n.legit_txn_n,
  a.n, a.first_seen, a.last_seen, count(r)
"""
        if k == "user"
        else f"""
MATCH (n:{LABELS[k]} {{id: $id}})
OPTIONAL MATCH (n)<-[r:USED]-(:User)
RETURN n.fraud_label, n.labelled_by, n.labelled_at, n.fraud_txn_n, n.legit_txn_n,
  sum(r.n), min(r.first_seen), max(r.last_seen), count(r)
"""
    )
    for k in ("user", *LINKED_KINDS)
}

#: Users of an entity (any kind but user), most active first: the way to its ledger rows.
ENTITY_USER_IDS: Final[dict[str, str]] = {
    k: f"""
MATCH (x:{LABELS[k]} {{id: $id}})<-[r:USED]-(u:User)
RETURN u.id ORDER BY r.n DESC, u.id LIMIT $limit
"""
    for k in LINKED_KINDS
}

#: Ledger rows of users (index on Txn.user) before a time, newest first; `kind` filters by the
#: entity's column (a constant per kind, never input).
TXN_COLUMN: Final[dict[str, str]] = {
    "user": "user",
    "card": "card",
    "device": "device",
    "ip": "ip",
    "merchant": "merchant",
}


def txns_of(kind: str) -> str:
    """A page of the ledger of the given users that involve entity `$id` of `kind`."""
    col = TXN_COLUMN[kind]
    return f"""
UNWIND $users AS uid
MATCH (t:Txn {{user: uid}})
WHERE t.{col} = $id AND t.ts < $before
RETURN t.id, t.ts, t.user, t.card, t.device, t.ip, t.merchant, t.amount, t.fraud_label,
  t.labelled_by, t.labelled_at
ORDER BY t.ts DESC, t.id DESC
LIMIT $limit
"""


#: Rings an entity ties (its `kind:id` among their shared entities): the ring nodes are few.
RINGS_SHARING: Final = "MATCH (g:Ring) WHERE $ref IN g.shared RETURN g.id ORDER BY g.risk DESC"

TXN_BY_ID: Final = """
UNWIND $ids AS tid
MATCH (t:Txn {id: tid})
RETURN t.id, t.ts, t.user, t.card, t.device, t.ip, t.merchant, t.amount, t.fraud_label,
  t.labelled_by, t.labelled_at
"""

#: Merchants the given users paid, with how many of them did, how many users the merchant has
#: in all (a mule ring's shell merchant lives off the ring) and how many receive there (a
#: payee's account: `graph.schemas.RECEIPT_AMOUNT`).
#: A user's receipt edge at a payee's account (`graph.schemas.RECEIPT_AMOUNT`).
_RECEIPT: Final = f"r.amount_sum = {RECEIPT_AMOUNT}"
MEMBER_MERCHANTS: Final = (
    """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[:USED]->(x:Merchant)
WITH x, count(u) AS members
WHERE members >= 2
MATCH (x)<-[r:USED]-(:User)
RETURN x.id, members, count(r), sum(CASE WHEN """
    + _RECEIPT
    + """ THEN 1 ELSE 0 END)
"""
)


#: Of the given merchant nodes, those that are payees' accounts: a user's receipt edge there
#: carries no amount (`graph.schemas.RECEIPT_AMOUNT`; payments are > 0).
PAYEE_ACCOUNTS: Final = (
    """
UNWIND $ids AS mid
MATCH (x:Merchant {id: mid})<-[r:USED]-(:User)
WHERE """
    + _RECEIPT
    + """
RETURN DISTINCT x.id
"""
)


# --- paths (graph.paths) ----------------------------------------------------------------------

#: Longest path searched (graph.paths, breadth-first one hop per query: the same on both
#: backends; FalkorDB's algo.SPpaths over a dense 8 hops ran past the client's timeout).
PATH_MAX_HOPS: Final = 8


#: One step of a path that avoids hubs (graph.paths): the entities a set of users used that tie
#: few accounts (at most $cap distinct users; merchants only if $merchants), or the path's end.
PATH_USER_STEP: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[:USED]->(x)
WHERE $merchants OR NOT x:Merchant OR x.id IN $ends
MATCH (x)<-[:USED]-(v:User)
WITH uid, x, count(DISTINCT v) AS deg
WHERE deg <= $cap OR x.id IN $ends
RETURN uid, labels(x)[0], x.id, deg
"""
#: The same through any entity (the last resort: hubs included).
PATH_USER_ANY: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[:USED]->(x)
RETURN uid, labels(x)[0], x.id, 0
"""
#: The users of given entities of one kind (the other half of a path's step).
PATH_ENTITY_STEP: Final = {
    k: f"UNWIND $ids AS eid\nMATCH (x:{LABELS[k]} {{id: eid}})<-[:USED]-(v:User)\nRETURN eid, v.id"
    for k in LINKED_KINDS
}
#: Whether a node exists (the ends of a path).
NODE_EXISTS: Final = {k: f"MATCH (n:{LABELS[k]} {{id: $id}}) RETURN n.id LIMIT 1" for k in LABELS}
