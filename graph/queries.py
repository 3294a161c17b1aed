"""The Cypher statements of the project, shared by both backends unless marked otherwise, but
the investigator's reads (`graph.evidence_queries`) and rings grown from labels
(`graph.label_queries`).

Values always travel as parameters. The only text built here is structural and comes from
constants: node labels (from `schemas.LABELS`), the internal-id function of a backend and the
degree expression, all fixed at import time, never derived from input.
"""

from __future__ import annotations

from typing import Final

from graph.schemas import LABELS, LINKED_KINDS

# --- ingest -----------------------------------------------------------------------------------
# One statement per batch, so the batch is atomic on FalkorDB (one query) and on Neo4j (one
# transaction). The guard makes it a no-op returning 0 when any of its transactions is already
# stored (a concurrent writer got there first); the caller then re-reads the ledger and retries.
#
# Per user row: the user, its activity totals and its edges of each kind, so the user is looked
# up once. Totals live on a self-loop `(u)-[:ACTIVITY]->(u)`, not on the node: FalkorDB
# re-indexes a node on every property write, edges are not indexed, so per-batch counters go on
# edges. Rows are positional lists (smaller parameter headers than maps):
#   users: [id, first_seen, last_seen, n, amount_sum, cards, devices, ips, merchants]
#     each of the last four a list of [entity_id, first_seen, last_seen, n, amount_sum]
#   txns:  [id, user, card, device, ip, merchant, ts, amount, payee] (the ledger keeps what a
#          label needs to find its edges, and what the entity statistics need: `LEDGER_SLICE`)

_GUARD = """
UNWIND $txn_ids AS tid
OPTIONAL MATCH (known:Txn {id: tid})
WITH count(known) AS existing
WHERE existing = 0
"""

#: users: [id, first_seen, last_seen, n, amount_sum]; merged with their ACTIVITY self-edge
USERS_MERGE: Final = """
UNWIND $users AS r
MERGE (u:User {id: r[0]})
MERGE (u)-[a:ACTIVITY]->(u)
ON CREATE SET a.first_seen = r[1], a.last_seen = r[2], a.n = r[3], a.amount_sum = r[4]
ON MATCH SET a.first_seen = CASE WHEN r[1] < a.first_seen THEN r[1] ELSE a.first_seen END,
  a.last_seen = CASE WHEN r[2] > a.last_seen THEN r[2] ELSE a.last_seen END,
  a.n = a.n + r[3], a.amount_sum = a.amount_sum + r[4]
"""

_EDGES = """
FOREACH (e IN r[{pos}] |
  MERGE (x:{label} {{id: e[0]}})
  MERGE (u)-[rel:USED]->(x)
  ON CREATE SET rel.first_seen = e[1], rel.last_seen = e[2], rel.n = e[3],
    rel.amount_sum = e[4], rel.fraud_n = 0, rel.legit_n = 0
  ON MATCH SET
    rel.first_seen = CASE WHEN e[1] < rel.first_seen THEN e[1] ELSE rel.first_seen END,
    rel.last_seen = CASE WHEN e[2] > rel.last_seen THEN e[2] ELSE rel.last_seen END,
    rel.n = rel.n + e[3], rel.amount_sum = rel.amount_sum + e[4])
"""

# `done` counts user rows, at least one in any batch that passed the guard: a failed guard
# makes the statement return 0 without touching the ledger.
_LEDGER = """
WITH count(*) AS done
WHERE done > 0
UNWIND $txns AS t
CREATE (:Txn {id: t[0], user: t[1], card: t[2], device: t[3], ip: t[4], merchant: t[5],
  ts: t[6], amount: t[7], payee: t[8]})
RETURN count(*) AS written
"""

INGEST: Final = (
    _GUARD
    + USERS_MERGE
    + "".join(_EDGES.format(pos=5 + i, label=LABELS[k]) for i, k in enumerate(LINKED_KINDS))
    + _LEDGER
)

KNOWN_TXNS: Final = "UNWIND $ids AS tid MATCH (t:Txn {id: tid}) RETURN t.id"

#: The ledger between two moments (range index on Txn.ts), with each transaction's label and
#: when it arrived: the input of the workers' entity statistics (`gnn.entitystats.current_stats`).
LEDGER_SPAN: Final = "MATCH (t:Txn) WHERE t.ts >= $since RETURN min(t.ts), max(t.ts), count(t)"
_LEDGER_PROPS = ("id", "user", "card", "merchant", "ts", "amount", "fraud_label", "labelled_at")
_LEDGER_RANGE = "MATCH (t:Txn) WHERE t.ts >= $since AND t.ts < $until RETURN "
LEDGER_SLICE: Final = _LEDGER_RANGE + ", ".join(f"t.{p}" for p in _LEDGER_PROPS)
#: The same slice as one string per column, values joined by `$sep` and nulls as '' (ids and
#: labels are never empty): for a backend whose client would parse every cell one by one.
LEDGER_SLICE_JOINED: Final = _LEDGER_RANGE + ", ".join(
    f"string.join(collect(coalesce(toString(t.{p}), '')), $sep)" for p in _LEDGER_PROPS
)

# --- labels -----------------------------------------------------------------------------------

TXN_USER: Final = """
MATCH (t:Txn {id: $id})
RETURN t.user, t.payee
"""

TXN_LABEL_READ: Final = """
MATCH (t:Txn {id: $id})
RETURN t.user, t.card, t.device, t.ip, t.merchant, t.fraud_label, t.payee
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
#: A transfer's label counts for its payee too, and for the payee's receipts at the account
#: the transfer paid: the account a fraudulent transfer fed is a mule's, a launderer's or a
#: scammer's (`gnn.ringrisk.fraud_users` counts it so offline). Run after `TXN_LABEL_WRITE`.
TXN_PAYEE_LABEL: Final = """
MATCH (p:User {id: $payee})
SET p.fraud_txn_n = coalesce(p.fraud_txn_n, 0) + $df,
  p.legit_txn_n = coalesce(p.legit_txn_n, 0) + $dl
WITH p
MATCH (p)-[r:USED]->(x:Merchant {id: $merchant})
SET r.fraud_n = coalesce(r.fraud_n, 0) + $df, r.legit_n = coalesce(r.legit_n, 0) + $dl
RETURN count(r)
"""

NODE_LABEL_READ: Final = {
    k: f"MATCH (n:{lab} {{id: $id}}) RETURN n.fraud_label" for k, lab in LABELS.items()
}
#: FalkorDB's constraints, and the ids its unique constraint cannot be built over (an outer
#: space crashes the server creating it: see fraudring.contract.ids).
FALKOR_CONSTRAINTS: Final = "CALL db.constraints()"
OUTER_SPACE_IDS: Final = (
    "MATCH (n:{label}) WHERE n.id STARTS WITH ' ' OR n.id ENDS WITH ' ' RETURN count(n)"
)

#: Which of the given ids are nodes of the kind (label imports check before queueing).
KNOWN_NODES: Final = {
    k: f"UNWIND $ids AS eid MATCH (n:{lab} {{id: eid}}) RETURN n.id" for k, lab in LABELS.items()
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

NEWEST_TS: Final = "MATCH (:User)-[a:ACTIVITY]->() RETURN max(a.last_seen)"


#: Which of an entity's recent users it ties into a ring, per kind (see graph.rings): any user
#: of a card or device; a user based at an IP (at least `ip_min_n` and `ip_share` of the user's
#: transactions, `a` being the user's activity self-loop); a repeat customer of a merchant.
_TIED: Final = {
    "card": "true",
    "device": "true",
    "ip": "r.n >= $ip_min_n AND r.n >= $ip_share * a.n",
    "merchant": "r.n >= 2",
}
#: The entity's recent users, the ones it ties, and its linking rule: a degree (distinct recent
#: users) in [min_deg, cap]; for a merchant, tied users at least `share` of its customers.
#: Two passes: counting first keeps hubs (a supermarket, a carrier NAT) from being collected.
_LINK = """
MATCH (x)<-[r:USED]-(:User)
WHERE r.last_seen >= $since
WITH x, count(r) AS degree
WHERE degree >= $min_deg AND degree <= $cap
MATCH (x)<-[r:USED]-(u:User)
WHERE r.last_seen >= $since{activity}
WITH x, degree, collect(CASE WHEN {tied} THEN u.id END) AS users
WHERE size(users) >= 2{share}
RETURN x.id, users
"""
_ACTIVITY = "\nMATCH (u)-[a:ACTIVITY]->(u)"


def _link(kind: str) -> str:
    return _LINK.format(
        activity=_ACTIVITY if kind == "ip" else "",
        tied=_TIED[kind],
        share=" AND size(users) >= $share * degree" if kind == "merchant" else "",
    )


def ring_links(*, page: str) -> dict[str, str]:
    """Per entity kind, one page of linking entities and the users they tie; `page` is the
    backend's paging predicate on `x` (a constant of the backend module)."""
    return {k: f"MATCH (x:{LABELS[k]})\nWHERE {page}" + _link(k) for k in LINKED_KINDS}


#: Entities a set of users is recently tied to (whether they link is ENTITY_USERS' call).
USER_ENTITIES: Final = f"""
UNWIND $ids AS uid
MATCH (u:User {{id: uid}})
MATCH (u)-[a:ACTIVITY]->(u)
MATCH (u)-[r:USED]->(x)
WHERE r.last_seen >= $since AND (
  (x:Merchant AND {_TIED["merchant"]}) OR x:Card OR x:Device OR (x:IP AND {_TIED["ip"]}))
RETURN DISTINCT labels(x)[0], x.id
"""

#: Per kind (separate queries: FalkorDB plans a label scan for one branch of a UNION), the same
#: linking rule as ring_links for given entities.
ENTITY_USERS: Final = {
    k: f"UNWIND $ids AS eid\nMATCH (x:{LABELS[k]} {{id: eid}})" + _link(k) for k in LINKED_KINDS
}

#: Candidates for each user's home (graph.ringrule.pick_bases chooses): its recent IPs, with the
#: user's transactions there; IP_DEGREES then drops hubs, counting each distinct IP once.
USER_IPS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[r:USED]->(x:IP)
WHERE r.last_seen >= $since
RETURN u.id, x.id, r.n
"""

IP_DEGREES: Final = """
UNWIND $ids AS eid
MATCH (x:IP {id: eid})<-[s:USED]-(:User)
WHERE s.last_seen >= $since
RETURN x.id, count(s)
"""

USER_RINGS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[:IN_RING]->(g:Ring)
RETURN DISTINCT g.id, g.created_at, g.members
"""

ALL_RINGS: Final = "MATCH (g:Ring) RETURN g.id, g.created_at, g.members"

USER_STATS: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})
OPTIONAL MATCH (u)-[a:ACTIVITY]->(u)
RETURN u.id, a.first_seen, a.last_seen, a.n, a.amount_sum, u.fraud_label, u.fraud_txn_n
"""

RING_DELETE: Final = "UNWIND $ids AS rid MATCH (g:Ring {id: rid}) DETACH DELETE g"

RING_UNLINK: Final = "UNWIND $ids AS rid MATCH (:User)-[m:IN_RING]->(g:Ring {id: rid}) DELETE m"

RING_UPSERT: Final = """
UNWIND $rings AS p
MERGE (g:Ring {id: p.id})
SET g += p
RETURN count(g)
"""

RING_LINK: Final = """
UNWIND $pairs AS p
MATCH (u:User {id: p[0]})
MATCH (g:Ring {id: p[1]})
CREATE (u)-[:IN_RING]->(g)
RETURN count(*)
"""

#: A ring's history (graph.ringevents), kept by ring id: a ring merged away keeps its events.
RING_EVENTS_WRITE: Final = "UNWIND $events AS e MERGE (n:RingEvent {id: e.id}) ON CREATE SET n = e"
RING_EVENTS_READ: Final = "MATCH (n:RingEvent {ring: $id}) RETURN properties(n)"
RING_EVENTS_PRUNE: Final = "MATCH (n:RingEvent) WHERE n.at < $before DELETE n"
ANY_NODE: Final = "MATCH (n) RETURN 1 LIMIT 1"
RING_BY_ID: Final = "MATCH (g:Ring {id: $id}) RETURN properties(g)"
RINGS_OF_SIZE: Final = "MATCH (g:Ring) WHERE g.size >= $min_size RETURN properties(g)"
TOP_RINGS: Final = """
MATCH (g:Ring)
RETURN properties(g)
ORDER BY g.risk DESC, g.id
LIMIT $n
"""

# --- investigator queries ---------------------------------------------------------------------


#: The properties a node can have besides its id (ingest and labels set no others).
NODE_PROPS: Final = ("fraud_label", "labelled_by", "labelled_at", "fraud_txn_n", "legit_txn_n")


#: Edge columns as integers (amount in cents, times in whole seconds): a server formats a float
#: as text several times slower than an integer, a third of a 200-row hop's time.
_EDGE_COLS = (
    "r.n, toInteger(round(r.amount_sum * 100)), r.fraud_n, toInteger(r.first_seen), "
    "toInteger(r.last_seen)"
)


def hops(key: str) -> tuple[str, str]:
    """(from users, from entities): one hop of a neighbourhood, frontier nodes given by the
    backend's internal key (`key` is its key function, a backend constant), so a hop across
    all entity kinds is one seek-based query. Rows: user id, entity label and id (from users)
    or the entity's key (from entities), edge columns (`_EDGE_COLS`), fraud label and count of
    the node reached, and its key."""
    from_users = f"""
UNWIND $keys AS k
MATCH (u:User) WHERE {key}(u) = k
MATCH (u)-[r:USED]->(x)
WHERE labels(x)[0] IN $labels
RETURN u.id, labels(x)[0], x.id, {_EDGE_COLS}, x.fraud_label, x.fraud_txn_n, {key}(x)
LIMIT $limit
"""
    # Only users have USED edges, so no label check; the entity comes back as its key (the
    # caller knows its kind and id): half the server time and a third fewer values to parse.
    from_entities = f"""
UNWIND $keys AS k
MATCH (x) WHERE {key}(x) = k
MATCH (x)<-[r:USED]-(u)
RETURN u.id, k, {_EDGE_COLS}, u.fraud_label, u.fraud_txn_n, {key}(u)
LIMIT $limit
"""
    return from_users, from_entities


def first_hop(kind: str, key: str) -> str:
    """The start node (its NODE_PROPS and key) and its first hop in one query, so a 2-hop
    neighbourhood is two round trips: rows are the start's 6 columns, then a `hops` row
    (nulls where the node has no edges; no row at all where it does not exist). An entity
    start comes back as its key, like `hops`' from-entities rows."""
    start = ", ".join([*(f"n.{p}" for p in NODE_PROPS), f"{key}(n) AS start"])
    if kind == "user":
        return f"""
MATCH (n:User {{id: $id}})
OPTIONAL MATCH (n)-[r:USED]->(x)
WHERE labels(x)[0] IN $labels
RETURN {start}, n.id, labels(x)[0], x.id, {_EDGE_COLS}, x.fraud_label, x.fraud_txn_n, {key}(x)
LIMIT $limit
"""
    return f"""
MATCH (n:{LABELS[kind]} {{id: $id}})
OPTIONAL MATCH (n)<-[r:USED]-(u)
RETURN {start}, u.id, {key}(n), {_EDGE_COLS}, u.fraud_label, u.fraud_txn_n, {key}(u)
LIMIT $limit
"""


# --- export -----------------------------------------------------------------------------------
# Columns per node kind and per edge, with the backend's internal id to join them cheaply.

#: Appended to a user page's MATCH so the activity totals can be read.
USER_EXPORT_MATCH: Final = " OPTIONAL MATCH (n)-[a:ACTIVITY]->(n)"
USER_EXPORT_COLS: Final = (
    "a.n",
    "a.amount_sum",
    "a.first_seen",
    "a.last_seen",
    "n.fraud_txn_n",
    "n.legit_txn_n",
)
ENTITY_EXPORT_COLS: Final = ("n.fraud_txn_n", "n.legit_txn_n")
EDGE_EXPORT_COLS: Final = ("r.n", "r.amount_sum", "r.fraud_n", "r.first_seen", "r.last_seen")

# --- replay point -----------------------------------------------------------------------------
# The first decision-stream entry the graph has not recorded as applied, as the two integers of
# a stream id. Written after each batch, in the same store as the batch, so a store that loses
# its newest writes loses the point with them and the workers replay from there.

REPLAY_POINT_READ: Final = "MATCH (c:Checkpoint {id: $stream}) RETURN c.ms, c.seq"
#: Only ever moves forward (two writers, or a stream whose server lost its tail, never move it
#: back).
REPLAY_POINT_WRITE: Final = """
MERGE (c:Checkpoint {id: $stream})
WITH c
WHERE c.ms IS NULL OR c.ms < $ms OR (c.ms = $ms AND c.seq < $seq)
SET c.ms = $ms, c.seq = $seq, c.at = $at
RETURN count(c)
"""
