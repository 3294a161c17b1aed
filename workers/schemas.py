"""Strict models of what the workers read from Redis streams; anything else is dead-lettered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]  # graph.schemas.MAX_ID_LEN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamTxn(_Strict):
    txn_id: Id
    ts: AwareDatetime
    user_id: Id
    card_id: Id | None = None
    device_id: Id | None = None
    ip: Id | None = None
    merchant_id: Id | None = None
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)]


class DecisionMessage(_Strict):
    """One record of ``{p}stream:decisions`` (field ``d``), as the API appends it."""

    txn: StreamTxn
    decision: Literal["approve", "review", "decline"]
    score: Annotated[float, Field(allow_inf_nan=False)] | None
    decided_at: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    model_version: str | None
    degraded: bool


AlertKind = Literal["high_risk_decision", "new_ring", "ring_grown", "replay_gap"]
Severity = Literal["low", "medium", "high"]


class Alert(_Strict):
    """One alert: a record of ``{p}stream:alerts`` (field ``d``, without `id`) and, with `id`,
    the body the webhook receives (docs/alerts.md)."""

    id: str | None = Field(default=None, description="the alerts stream's entry id")
    kind: AlertKind
    severity: Severity
    ring_id: str | None
    evidence: dict[str, Any]
    at: float = Field(description="when it was raised, Unix seconds")
