"""Strict models of what the workers write and read on Redis streams; anything else read is
dead-lettered. The decision stream's record is the shared contract's
(fraudring.contract.transaction.DecisionRecord)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
