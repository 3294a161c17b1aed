"""Request and response models of the decision engine; the transaction itself is the shared
contract's (fraudring.contract.transaction), so the API refuses what every other layer does."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudring.contract.transaction import (
    EXAMPLE_TXN,
    CardToken,
    EntityId,
    IpAddress,
    Transaction,
)
from fraudring.contract.transaction import Verdict as Outcome

__all__ = ["CardToken", "EntityId", "IpAddress", "Outcome", "Transaction"]

#: The most transactions one batch request may carry.
MAX_BATCH: int = 100


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"transactions": [EXAMPLE_TXN]}]}
    )

    transactions: list[Transaction] = Field(min_length=1, max_length=MAX_BATCH)


class FiredRule(BaseModel):
    name: str
    action: Literal["decline", "review", "add_score", "approve"] = Field(
        description="`approve` only for an allow list entry (name `allow_list:kind:id`)"
    )
    score: float | None = None


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class RingContext(BaseModel):
    ring_id: str
    size: int
    fraud_rate: float
    entity: str = Field(description="Which entity of the transaction carries the ring.")


class Explanation(BaseModel):
    rules: list[FiredRule] = Field(default_factory=list)
    contributions: list[Contribution] = Field(
        default_factory=list, description="Top XGBoost contributions (log-odds), largest first."
    )
    ring: RingContext | None = None
    notes: list[str] = Field(default_factory=list)


EXAMPLE_DECISION: dict[str, Any] = {
    "txn_id": "t-000001",
    "decision": "review",
    "score": 0.71,
    "review_means": "manual_review",
    "degraded": False,
    "model_version": "20261125T174700000000Z",
    "decided_at": 1795629600.0,
    "explanation": {
        "rules": [{"name": "new_device_high_amount", "action": "add_score", "score": 0.1}],
        "contributions": [
            {"feature": "device_risk", "value": 0.83, "contribution": 1.9},
            {"feature": "user_new_device", "value": 1.0, "contribution": 0.6},
        ],
        "ring": {"ring_id": "r-17", "size": 9, "fraud_rate": 0.44, "entity": "device"},
        "notes": [],
    },
}


class Decision(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DECISION]})

    txn_id: str
    decision: Outcome
    score: float | None = Field(
        description="Model probability after add_score rules; null without a model."
    )
    review_means: str | None = Field(
        default=None, description="For `review`: `step_up` (authenticate) or `manual_review`."
    )
    degraded: bool = Field(description="True when Redis was slow or down: no velocity or risk.")
    model_version: str | None
    decided_at: float
    explanation: Explanation


class BatchResponse(BaseModel):
    decisions: list[Decision]
