"""`graph.labelbulk.label_txns` leaves the graph as labelling one by one does, on both stores."""

from __future__ import annotations

from typing import Any

from graph.labelbulk import label_txns
from graph.repository import CypherStore
from graph.schemas import LabelValue, TxnRecord

T0 = 1_750_000_000.0

#: (txn, user, card, device, ip, merchant, payee): shared card and merchant, a missing device
#: and IP; transfers to u4's account (its payee's counts move too)
ROWS: list[tuple[str, str, str | None, str | None, str | None, str, str | None]] = [
    ("1", "u1", "c1", "d1", "ip1", "m1", None),
    ("2", "u1", "c1", "d1", "ip1", "m1", None),
    ("3", "u2", "c1", "d2", None, "m1", None),
    ("4", "u2", "c2", None, None, "m2", None),
    ("5", "u3", "c2", "d2", "ip1", "m1", None),
    ("6", "u3", None, None, None, "u4", "u4"),
    ("7", "u1", None, None, None, "u4", "u4"),
]
#: in arrival order: a relabel, the same label twice, a transaction the graph does not hold
LABELS: list[tuple[str, LabelValue, float]] = [
    ("1", "fraud", T0),
    ("3", "fraud", T0 + 1),
    ("4", "legitimate", T0 + 2),
    ("1", "legitimate", T0 + 3),
    ("5", "fraud", T0 + 4),
    ("5", "fraud", T0 + 5),
    ("6", "fraud", T0 + 6),
    ("7", "fraud", T0 + 7),
    ("7", "legitimate", T0 + 8),
    ("9", "fraud", T0 + 9),
]


def _ingest(store: CypherStore, p: str) -> None:
    def pre(e: str | None) -> str | None:
        return p + e if e else None

    store.ingest(
        [
            TxnRecord(p + t, T0 - 10, p + u, pre(c), pre(d), pre(ip), pre(m), 10.0, pre(q))
            for t, u, c, d, ip, m, q in ROWS
        ]
    )


def _state(store: CypherStore, p: str) -> list[tuple[Any, ...]]:
    """Every count and label of world `p`, its ids without the prefix."""
    out: list[tuple[Any, ...]] = []
    for row in store._read(
        "MATCH (u:User)-[r:USED]->(x) WHERE u.id STARTS WITH $p RETURN u.id, labels(x)[0], "
        "x.id, r.fraud_n, r.legit_n, u.fraud_txn_n, u.legit_txn_n, x.fraud_txn_n, x.legit_txn_n",
        {"p": p},
    ):
        out.append((row[0][len(p) :], row[1], row[2][len(p) :], *(v or 0 for v in row[3:])))
    for row in store._read(
        "MATCH (t:Txn) WHERE t.id STARTS WITH $p RETURN t.id, t.fraud_label, t.labelled_at",
        {"p": p},
    ):
        out.append((row[0][len(p) :], row[1], row[2]))
    return sorted(out, key=repr)


def test_bulk_labels_leave_what_labelling_one_by_one_leaves(store: CypherStore) -> None:
    _ingest(store, "a-")
    _ingest(store, "b-")
    for t, label, at in LABELS[:-1]:  # one by one (the unknown one would be refused)
        store.label(kind="txn", id="a-" + t, label=label, by="chargeback", at=at)
    changed = label_txns(store, [("b-" + t, lab, at) for t, lab, at in LABELS], by="chargeback")
    assert changed == 6  # 1, 3, 4, 5, 6 and 7; 9 is not in the graph
    assert _state(store, "b-") == _state(store, "a-")
    assert ("1", "legitimate", T0 + 3) in _state(store, "b-")
    assert label_txns(store, [("b-" + t, lab, at) for t, lab, at in LABELS], by="x") == 0
