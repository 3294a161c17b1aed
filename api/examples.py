"""Examples, in the OpenAPI document, of the response models other packages define: the graph's
rings, neighbourhoods, evidence and history, the workbench's pages, the batch of decisions, the
error body. Kept here so the packages that own the models stay free of documentation.

The tests validate each example against its model; FastAPI writes the OpenAPI document without
null values, so an example gives a value to every field that has no default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.errors import ErrorBody
from api.workbench.actions import Applied, Preview
from api.workbench.labels import LabelOut
from api.workbench.queue import ReviewPage, RingsPage
from graph.history import RingTimeline, TxnPage
from graph.investigation import EntityEvidence, RingEvidence
from graph.schemas import GraphPath, Neighbourhood, Ring
from realtime.audit import AuditEvent
from realtime.cases import Case, CasesPage
from realtime.lists import ListEntryOut, ListsPage
from realtime.schemas import EXAMPLE_DECISION, BatchResponse

T0 = 1795629600.0
RING: dict[str, Any] = {
    "id": "r-5f1c2a9e",
    "size": 9,
    "suspicious": True,
    "flagged_by": "labels",
    "members": ["u-1042", "u-2231", "u-3310"],
    "shared_entities": [{"kind": "device", "id": "d-77"}, {"kind": "card", "id": "tok_9f8e"}],
    "density": 0.42,
    "fraud_n": 4,
    "fraud_rate": 0.44,
    "amount": 18250.0,
    "account_age_days": 6.5,
    "first_activity": T0 - 629600,
    "last_activity": T0,
    "risk": 0.81,
    "created_at": T0 - 529600,
    "updated_at": T0 + 10,
    "gcn_score": 0.9,
}
LEDGER_TXN: dict[str, Any] = {
    "txn_id": "t-000123",
    "ts": T0,
    "user_id": "u-1042",
    "card_id": "tok_9f8e",
    "device_id": "d-77",
    "ip": "203.0.113.9",
    "merchant_id": "m-3",
    "amount": 129.5,
    "label": "fraud",
    "labelled_by": "chargebacks",
    "labelled_at": T0 + 7 * 86400,
}
LIST_ENTRY: dict[str, Any] = {
    "kind": "device",
    "id": "d-77",
    "action": "block",
    "list": "block",
    "reason": "shared by ring r-5f1c2a9e",
    "by": "ana",
    "at": T0,
    "expires_at": T0 + 7 * 86400,
    "case_id": "c-12",
    "ring_id": "r-5f1c2a9e",
}
PREVIEW: dict[str, Any] = {
    "action": "block",
    "targets": [{"kind": "user", "id": "u-1042"}, {"kind": "device", "id": "d-77"}],
    "counts": {"user": 1, "device": 1},
    "collateral_accounts": 2,
    "decisions_last_day": 14,
    "legitimate_looking": ["u-2231"],
    "already_listed": [],
}
CASE: dict[str, Any] = {
    "id": "c-12",
    "subject_kind": "ring",
    "subject_id": "r-5f1c2a9e",
    "title": "Device-sharing ring, 9 accounts",
    "status": "investigating",
    "assignee": "ana",
    "disposition": "fraud_confirmed",
    "created_by": "ana",
    "created_at": T0,
    "updated_at": T0 + 3600,
    "events": [{"id": "1795629600000-0", "type": "opened", "who": "ana", "at": T0, "why": "alert"}],
}
LABEL_OUT: dict[str, Any] = {
    "event_id": "1795629600000-1",
    "who": "ana",
    "changed": 1,
    "targets": [["user", "u-1042", "", "fraud"]],
    "rings": [RING],
}

EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    Ring: RING,
    Neighbourhood: {
        "start": {"kind": "device", "id": "d-77"},
        "hops": 1,
        "nodes": [
            {"kind": "device", "id": "d-77", "props": {"fraud_txn_n": 4, "legit_txn_n": 1}},
            {"kind": "user", "id": "u-1042", "props": {"fraud_txn_n": 2, "legit_txn_n": 0}},
        ],
        "edges": [
            {
                "user_id": "u-1042",
                "kind": "device",
                "entity_id": "d-77",
                "n": 3,
                "amount_sum": 2400.0,
                "fraud_n": 2,
                "first_seen": T0 - 629600,
                "last_seen": T0,
            }
        ],
        "truncated": False,
    },
    GraphPath: {
        "nodes": [
            {"kind": "user", "id": "u-1042"},
            {"kind": "device", "id": "d-77"},
            {"kind": "user", "id": "u-2231"},
        ],
        "length": 2,
        "through_hubs": False,
        "note": "",
    },
    RingEvidence: {
        "ring": RING,
        "links": [
            {
                "kind": "device",
                "id": "d-77",
                "members": ["u-1042", "u-2231"],
                "others": 0,
                "first_seen": T0 - 629600,
                "last_seen": T0,
                "txn_n": 31,
                "fraud_txn_n": 9,
                "amount": 8120.0,
                "label": "fraud",
                "risk_drop": 0.35,
                "left_apart": 4,
            }
        ],
        "components": {
            "fraud_rate": 0.24,
            "size": 0.17,
            "density": 0.06,
            "youth": 0.08,
            "recency": 0.98,
            "total": 0.81,
        },
        "homes": {"198.51.100.4": ["u-1042"], "198.51.100.9": ["u-2231", "u-3310"]},
        "typology": "synthetic_identity",
        "typologies": [
            {"typology": "synthetic_identity", "score": 0.7, "reasons": ["young accounts"]}
        ],
        "members": [
            {
                "id": "u-1042",
                "fraud": True,
                "fraud_label": "fraud",
                "fraud_txn_n": 2,
                "txn_n": 12,
                "amount": 2400.0,
                "first_seen": T0 - 629600,
                "last_seen": T0,
                "joined": T0 - 600000,
                "home": "198.51.100.4",
                "entities": {"card": 2, "device": 1, "ip": 2, "merchant": 5},
            }
        ],
        "narrative": "9 accounts tied by device d-77 across 2 homes; 4 with fraud on record.",
    },
    EntityEvidence: {
        "kind": "device",
        "id": "d-77",
        "label": "fraud",
        "labelled_by": "ana",
        "labelled_at": T0,
        "fraud_txn_n": 9,
        "legit_txn_n": 22,
        "txn_n": 31,
        "first_seen": T0 - 629600,
        "last_seen": T0,
        "degree": 6,
        "rings": ["r-5f1c2a9e"],
        "narrative": "Device d-77: 6 accounts in 2 homes, 9 fraudulent transactions.",
    },
    TxnPage: {
        "kind": "user",
        "id": "u-1042",
        "transactions": [LEDGER_TXN],
        "next_before": T0,
    },
    RingTimeline: {
        "ring_id": "r-5f1c2a9e",
        "events": [
            {"ts": T0 - 629600, "event": "first_activity", "member": "u-1042", "detail": ""},
            {"ts": T0 - 529600, "event": "detected", "member": "u-1042", "detail": "5 members"},
            {
                "ts": T0 - 529600,
                "event": "grew",
                "members": ["u-2231"],
                "related": [],
                "detail": "grew to 5: u-2231 joined",
            },
        ],
        "days": [{"day": "2026-11-25", "txn_n": 14, "amount": 1830.0, "fraud_txn_n": 3}],
        "changes": [
            {
                "ring_id": "r-5f1c2a9e",
                "kind": "grew",
                "at": T0 - 529600,
                "as_of": T0 - 529700,
                "seq": 0,
                "size": 5,
                "joined": ["u-2231"],
                "left": [],
                "related": [],
            }
        ],
    },
    RingsPage: {"rings": [RING], "typology": {RING["id"]: "synthetic_identity"}, "total": 1},
    ReviewPage: {
        "items": [
            {
                "txn_id": "t-000123",
                "decided_at": T0,
                "decision": EXAMPLE_DECISION,
                "txn": LEDGER_TXN,
                "ring": RING,
            }
        ],
        "total": 1,
    },
    LabelOut: LABEL_OUT,
    Preview: PREVIEW,
    Applied: {"preview": PREVIEW, "entries": [LIST_ENTRY]},
    ListEntryOut: LIST_ENTRY,
    ListsPage: {"entries": [LIST_ENTRY], "total": 1},
    Case: CASE,
    CasesPage: {"cases": [CASE], "total": 1},
    AuditEvent: {
        "id": "1795629600000-1",
        "who": "ana",
        "what": "label",
        "why": "chargeback confirmed by the issuer",
        "target": "user:u-1042",
        "at": T0,
        "detail": {"label": "fraud", "case_id": "c-12"},
    },
    BatchResponse: {"decisions": [EXAMPLE_DECISION]},
    ErrorBody: {
        "error": "invalid_input",
        "message": "amount: must be greater than 0",
        "detail": {"errors": [{"field": "amount", "reason": "must be greater than 0"}]},
    },
}


def add_examples(schemas: dict[str, Any]) -> None:
    """Put `EXAMPLES` into the OpenAPI components of their models (once, where none is set)."""
    for model, example in EXAMPLES.items():
        component = schemas.get(model.__name__)
        if component is not None and "examples" not in component:
            component["examples"] = [example]
