"""Many transaction labels at once, for a bulk load (`world.bulkload`).

`CypherStore.label` applies one label in two round trips, about a thousand a second: a data set
whose every transaction carries a chargeback or a confirmed-legitimate label spent minutes on
them. Here a chunk of labels is read in one statement, and the counts it moves (the user's, each
edge's and each entity's) are summed per node in Python, so every statement touches a node
once: an update that reads a property another row of the same statement just set is not
something both backends promise. The end state is what applying the labels one by one would
leave; not meant to race live labellers (`label` guards against that, this does not).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from fraudring.logs import get_logger
from graph.schemas import LABELS, LINKED_KINDS, LabelValue

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

log = get_logger(__name__)

CHUNK: Final = 20_000

#: A transaction's entity of each kind is its property of that name.
TXN_READ: Final = (
    "UNWIND $ids AS tid\nMATCH (t:Txn {id: tid})\nRETURN t.id, t.user, "
    + ", ".join(f"t.{k}" for k in LINKED_KINDS)
    + ", t.fraud_label, t.payee"
)
TXN_SET: Final = """
UNWIND $rows AS row
MATCH (t:Txn {id: row.id})
SET t.fraud_label = row.label, t.labelled_by = row.by, t.labelled_at = row.at
"""
USER_ADD: Final = """
UNWIND $rows AS row
MATCH (u:User {id: row.id})
SET u.fraud_txn_n = coalesce(u.fraud_txn_n, 0) + row.df,
  u.legit_txn_n = coalesce(u.legit_txn_n, 0) + row.dl
"""
EDGE_ADD: Final = {
    k: f"""
UNWIND $rows AS row
MATCH (u:User {{id: row.user}})-[r:USED]->(x:{LABELS[k]} {{id: row.id}})
SET r.fraud_n = coalesce(r.fraud_n, 0) + row.df, r.legit_n = coalesce(r.legit_n, 0) + row.dl
"""
    for k in LINKED_KINDS
}
NODE_ADD: Final = {
    k: f"""
UNWIND $rows AS row
MATCH (x:{LABELS[k]} {{id: row.id}})
SET x.fraud_txn_n = coalesce(x.fraud_txn_n, 0) + row.df,
  x.legit_txn_n = coalesce(x.legit_txn_n, 0) + row.dl
"""
    for k in LINKED_KINDS
}


def _delta(old: str, new: str) -> tuple[int, int]:
    """How a label change moves the (fraud, legitimate) counts."""
    fraud = int(new == "fraud") - int(old == "fraud")
    return fraud, int(new == "legitimate") - int(old == "legitimate")


def label_txns(
    store: CypherBackend, labels: Iterable[tuple[str, LabelValue, float]], *, by: str
) -> int:
    """Apply (txn id, label, at) rows in arrival order: per transaction the last label stands,
    with the time it was first given (a repeat changes nothing, as with `label`; a transaction
    whose labels end where the graph's began keeps the graph's time). Transactions the graph
    does not hold are skipped. Returns how many transactions changed label."""
    final: dict[str, tuple[LabelValue, float]] = {}
    for txn_id, label, at in labels:
        if txn_id not in final or final[txn_id][0] != label:
            final[txn_id] = (label, at)
    ids = list(final)
    changed = 0
    for i in range(0, len(ids), CHUNK):
        changed += _chunk(store, {t: final[t] for t in ids[i : i + CHUNK]}, by=by)
    log.info("graph.labelled_many", labels=len(ids), changed=changed, by=by)
    return changed


def _chunk(store: CypherBackend, rows: dict[str, tuple[LabelValue, float]], *, by: str) -> int:
    users: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    edges: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    nodes: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    sets: list[dict[str, Any]] = []
    for tid, user, *ents, old, payee in store._read(TXN_READ, {"ids": list(rows)}):
        label, at = rows[tid]
        if (old or "") == label:
            continue
        sets.append({"id": tid, "label": label, "by": by, "at": float(at)})
        df, dl = _delta(old or "", label)
        # a transfer's payee and its receipts count too (`graph.queries.TXN_PAYEE_LABEL`)
        payee_counts = []
        if payee is not None and payee != user:
            account = ents[LINKED_KINDS.index("merchant")]
            payee_counts = [users[payee], edges[("merchant", payee, account)]]
        for target in [users[user], *payee_counts] + [
            acc
            for kind, eid in zip(LINKED_KINDS, ents, strict=True)
            if eid is not None
            for acc in (edges[(kind, user, eid)], nodes[(kind, eid)])
        ]:
            target[0] += df
            target[1] += dl
    if not sets:
        return 0
    statements: list[tuple[str, dict[str, Any]]] = [
        (TXN_SET, {"rows": sets}),
        (USER_ADD, {"rows": [{"id": u, "df": d[0], "dl": d[1]} for u, d in users.items()]}),
    ]
    for kind in LINKED_KINDS:
        e_rows = [
            {"user": u, "id": e, "df": d[0], "dl": d[1]}
            for (k, u, e), d in edges.items()
            if k == kind
        ]
        n_rows = [{"id": e, "df": d[0], "dl": d[1]} for (k, e), d in nodes.items() if k == kind]
        if e_rows:
            statements += [(EDGE_ADD[kind], {"rows": e_rows}), (NODE_ADD[kind], {"rows": n_rows})]
    store._write_all(statements)
    return len(sets)
