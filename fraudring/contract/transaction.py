"""The transaction and the decision stream record: one model from the API (or a loader) to the
workers, validated the same way at every step.

Caps that are deployment settings (amount cap, clock skew, earliest time) come in the pydantic
validation context (`context(settings)`); without one the defaults below apply. The time is an
aware UTC datetime everywhere in Python and ISO 8601 text ("...Z") on the wire and in the stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from fraudring.contract.currencies import ISO_4217
from fraudring.contract.ids import ID_SCHEMA, check_id, check_ip

#: Caps used when no settings are passed in the validation context (tests of pure rules).
DEFAULT_AMOUNT_CAP: Final = 1_000_000.0
DEFAULT_MAX_FUTURE_SKEW_S: Final = 300
#: The earliest transaction time accepted by default (2000-01-01T00:00:00Z).
DEFAULT_MIN_TS: Final = 946_684_800.0
ISO_DATETIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")
TS_MESSAGE: Final = (
    "must be an ISO 8601 date-time string with a timezone, e.g. 2026-11-25T18:00:00Z"
)

EntityId = Annotated[str, AfterValidator(check_id), WithJsonSchema(dict(ID_SCHEMA))]
CardToken = Annotated[
    str,
    AfterValidator(check_id),
    WithJsonSchema(dict(ID_SCHEMA) | {"description": "A card token; card numbers are refused."}),
]
IpAddress = Annotated[
    str,
    AfterValidator(check_ip),
    WithJsonSchema({"anyOf": [{"type": "string", "format": f} for f in ("ipv4", "ipv6")]}),
]

EXAMPLE_TXN: Final[dict[str, Any]] = {
    "txn_id": "t-000001",
    "ts": "2026-11-25T18:00:00Z",
    "user_id": "u-42",
    "card_id": "tok_4f9c2a",
    "device_id": "d-7",
    "ip": "203.0.113.9",
    "merchant_id": "m-3",
    "amount": 129.5,
    "currency": "EUR",
}


def context(
    *,
    amount_cap: float,
    max_future_skew_s: float,
    min_ts: float = DEFAULT_MIN_TS,
    now: float | None = None,
) -> dict[str, Any]:
    """The validation context carrying a deployment's caps (see Settings.contract_context)."""
    return {
        "amount_cap": amount_cap,
        "max_future_skew_s": max_future_skew_s,
        "min_ts": min_ts,
        "now": now,
    }


def _ctx(info: ValidationInfo, name: str, default: Any) -> Any:
    ctx = info.context
    if isinstance(ctx, dict) and ctx.get(name) is not None:
        return ctx[name]
    return default


def iso(ts: datetime) -> str:
    """The wire form of a time: UTC, ISO 8601, "Z"."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Transaction(BaseModel):
    """One payment to decide on. Entities other than the user may be absent (null)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [EXAMPLE_TXN]},
    )

    txn_id: EntityId = Field(
        description="Unique id; a retry with the same id and body gets the same answer, "
        "another body under a used id a 409."
    )
    ts: AwareDatetime = Field(
        description="Event time, ISO 8601 text with a timezone (numbers are refused), not before "
        "2000-01-01 (a setting) and at most the configured clock skew (300 s by default) in the "
        "future."
    )
    user_id: EntityId
    card_id: CardToken | None = Field(
        default=None, description="Card TOKEN; raw card numbers are refused."
    )
    device_id: EntityId | None = None
    ip: IpAddress | None = None
    merchant_id: EntityId | None = None
    amount: float = Field(
        description="Positive, finite, below the configured cap (a number, not a boolean).",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    currency: str = Field(
        description="ISO 4217 code, upper case.",
        examples=["EUR"],
        json_schema_extra={"enum": list[JsonValue](sorted(ISO_4217))},
    )
    merchant_category: EntityId | None = None
    payee_user_id: EntityId | None = Field(
        default=None,
        description="For a transfer between accounts: the user receiving it. The graph ties "
        "the payee to the transfer's counterparty (merchant_id, the payee's account; taken to "
        "be payee_user_id when absent), so money moved between accounts links them.",
    )

    @model_validator(mode="after")
    def _payee_account(self) -> Transaction:
        """A transfer without a merchant_id is paid to the payee's own account (filled once the
        payee is valid, so a bad payee is one error, under its own name)."""
        if self.payee_user_id and not self.merchant_id:
            return self.model_copy(update={"merchant_id": self.payee_user_id})
        return self

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_type(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic would read true as 1.0
            raise ValueError("must be a number, not a boolean")
        return v

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: float, info: ValidationInfo) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        if v <= 0:
            raise ValueError("must be greater than 0")
        cap = _ctx(info, "amount_cap", DEFAULT_AMOUNT_CAP)
        if v >= cap:
            raise ValueError(f"must be below the cap of {cap:g}")
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in ISO_4217:
            raise ValueError("must be an ISO 4217 currency code such as EUR or USD")
        return v

    @field_validator("ts", mode="before")
    @classmethod
    def _ts_text(cls, v: Any) -> Any:
        """Only ISO 8601 text (or a datetime from Python callers): pydantic would otherwise
        take a number, or a string of digits, as seconds since 1970 without saying so."""
        if isinstance(v, datetime):
            return v
        if not isinstance(v, str) or not ISO_DATETIME.match(v):
            raise ValueError(TS_MESSAGE)
        return v

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: datetime, info: ValidationInfo) -> datetime:
        low = _ctx(info, "min_ts", DEFAULT_MIN_TS)
        skew = _ctx(info, "max_future_skew_s", DEFAULT_MAX_FUTURE_SKEW_S)
        now = _ctx(info, "now", None) or datetime.now(UTC).timestamp()
        try:  # year 1 or 9999 with an offset is out of the datetime range once in UTC
            epoch = v.timestamp()
            utc = v.astimezone(UTC)
        except (OverflowError, ValueError):
            epoch, utc = -math.inf, v
        if not epoch >= low:
            since = datetime.fromtimestamp(low, tz=UTC)
            raise ValueError(f"must not be earlier than {iso(since)}")
        if epoch > now + skew:
            raise ValueError(f"must not be more than {skew:g} s in the future")
        return utc

    @property
    def epoch(self) -> float:
        return self.ts.timestamp()

    @property
    def ids(self) -> tuple[str, str, str, str, str]:
        """The entity ids in ENTITY_KINDS order, "" where absent (the velocity script's keys)."""
        return (
            self.user_id,
            self.card_id or "",
            self.device_id or "",
            self.ip or "",
            self.merchant_id or "",
        )

    def record(self) -> dict[str, Any]:
        """The `txn` part of the decision stream record (the time as ISO text)."""
        return {
            "txn_id": self.txn_id,
            "ts": iso(self.ts),
            "user_id": self.user_id,
            "card_id": self.card_id,
            "device_id": self.device_id,
            "ip": self.ip,
            "merchant_id": self.merchant_id,
            "amount": self.amount,
            "currency": self.currency,
        } | ({"payee_user_id": self.payee_user_id} if self.payee_user_id else {})

    def body_hash(self) -> str:
        """A digest of the canonical body (field order, spacing, time zone and absent-vs-null
        do not matter): what idempotency compares a retry with."""
        canon = self.record() | {"merchant_category": self.merchant_category}
        text = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.blake2b(text.encode(), digest_size=15).digest()
        return base64.urlsafe_b64encode(digest).decode()


Verdict = Literal["approve", "review", "decline"]


class DecisionRecord(BaseModel):
    """One record of the decision stream (field ``d``), as the API appends it and the workers
    read it; anything else a worker reads is dead-lettered with its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    txn: Transaction
    decision: Verdict
    score: Annotated[float, Field(allow_inf_nan=False)] | None
    decided_at: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    model_version: str | None
    degraded: bool
