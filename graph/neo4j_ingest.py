"""Neo4j's ingest: one batch as a few set-oriented statements in one transaction.

FalkorDB runs a batch as one statement (`queries.INGEST`); on Neo4j that statement's
`FOREACH` merges plan `Eager` barriers between them and merge every edge from a user row. Here
the batch is pre-aggregated in Python (one row per distinct transaction, user, entity and
(user, entity) edge) and sent as separate `UNWIND` statements, each merging only on a key with
a unique constraint (`Neo4jStore.ensure_schema`):

1. the ledger (`CREATE` of each `Txn`): its unique constraint on `Txn.id` is the guard; a
   transaction already stored raises `ConstraintError` and the whole batch rolls back;
2. the users and their activity self-loops, totals added in one pass;
3. per entity kind: the distinct entities, then the `USED` edges by two index seeks and a merge.

All of it commits or none, like FalkorDB's one statement. The data written is the same on both
stores (the contract suite of tests/graph checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from fraudring.contract.ids import ID_FIELDS
from graph import ingest as ing
from graph import queries as q
from graph.schemas import LABELS, LINKED_KINDS

Statement = tuple[str, dict[str, object]]

LEDGER: Final = """
UNWIND $rows AS t
CREATE (:Txn {id: t[0], user: t[1], card: t[2], device: t[3], ip: t[4], merchant: t[5],
  ts: t[6], amount: t[7], payee: t[8]})
"""


#: Per kind: the distinct entities of the batch.
ENTITIES: Final = {k: f"UNWIND $ids AS eid MERGE (:{LABELS[k]} {{id: eid}})" for k in LINKED_KINDS}

#: Per kind, rows: [user_id, entity_id, first_seen, last_seen, n, amount_sum]; both ends exist
#: (the statements before), so the edge merge is two unique-index seeks and an expand-into.
EDGES: Final = {
    k: f"""
UNWIND $rows AS e
MATCH (u:User {{id: e[0]}})
MATCH (x:{LABELS[k]} {{id: e[1]}})
MERGE (u)-[rel:USED]->(x)
ON CREATE SET rel.first_seen = e[2], rel.last_seen = e[3], rel.n = e[4],
  rel.amount_sum = e[5], rel.fraud_n = 0, rel.legit_n = 0
ON MATCH SET
  rel.first_seen = CASE WHEN e[2] < rel.first_seen THEN e[2] ELSE rel.first_seen END,
  rel.last_seen = CASE WHEN e[3] > rel.last_seen THEN e[3] ELSE rel.last_seen END,
  rel.n = rel.n + e[4], rel.amount_sum = rel.amount_sum + e[5]
"""
    for k in LINKED_KINDS
}

_ENTITY_COLUMN: Final = {k: ID_FIELDS[k] for k in LINKED_KINDS}


@dataclass
class Plan:
    """The statements of one batch, in order, with what they write."""

    statements: list[Statement]
    txns: int
    edges: int


def plan(batch: ing.Batch) -> Plan:
    """The statements writing a deduplicated batch (`ing.dedupe`), aggregated per node/edge."""
    ledger = batch.frame.select(ing.LEDGER_COLUMNS).rows()
    frame = ing.with_payees(batch.frame)
    statements: list[Statement] = [
        (LEDGER, {"rows": ledger}),
        (q.USERS_MERGE, {"users": ing.activity(frame, ["user_id"]).rows()}),
    ]
    edges = 0
    for kind in LINKED_KINDS:
        col = _ENTITY_COLUMN[kind]
        present = frame.filter(pl.col(col).is_not_null())
        if present.height == 0:
            continue
        ids = present[col].unique(maintain_order=True).to_list()
        rows = ing.activity(present, ["user_id", col]).sort("user_id").rows()
        statements.append((ENTITIES[kind], {"ids": ids}))
        statements.append((EDGES[kind], {"rows": rows}))
        edges += len(rows)
    return Plan(statements=statements, txns=len(ledger), edges=edges)
