"""Request and response models of the decision engine.

Validation is strict because a transaction's ids become Redis keys and graph nodes: a bad id
would poison both. The card field must be a token: a raw card number (PAN) is refused with a
reason that never repeats the value, so it reaches neither logs nor storage.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import WithJsonSchema

from realtime.currencies import ISO_4217

MAX_ID_LEN = 128
#: Caps used when no settings are passed in the validation context (tests of pure rules).
DEFAULT_AMOUNT_CAP = 1_000_000.0
DEFAULT_MAX_FUTURE_SKEW_S = 300


def check_id(value: str) -> str:
    """Ids become Redis keys and graph node ids: non-empty, bounded, printable."""
    if not value or not value.strip():
        raise ValueError("must not be empty")
    if len(value) > MAX_ID_LEN:
        raise ValueError(f"must be at most {MAX_ID_LEN} characters")
    if not value.isprintable():
        raise ValueError("must contain printable characters only")
    return value


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def looks_like_pan(value: str) -> bool:
    """13-19 digits (spaces and dashes allowed between them) that pass the Luhn check."""
    digits = value.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit() and luhn_ok(digits)


def check_card_token(value: str) -> str:
    if looks_like_pan(value):
        # The message must not contain the value: the 422 body and logs would carry a PAN.
        raise ValueError(
            "looks like a raw card number (13-19 digits passing the Luhn check); "
            "send the card token from your vault instead"
        )
    return check_id(value)


def check_ip(value: str) -> str:
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


#: What the validators enforce, told to clients in the OpenAPI schema (generated clients and
#: API fuzzers read it): the Python checks stay the source of truth and the error messages.
ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LEN,
    "pattern": r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
    "description": f"Printable, not blank, at most {MAX_ID_LEN} characters.",
}
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")
TS_MESSAGE = "must be an ISO 8601 date-time string with a timezone, e.g. 2026-11-25T18:00:00Z"

EntityId = Annotated[str, AfterValidator(check_id), WithJsonSchema(ID_SCHEMA)]
CardToken = Annotated[
    str,
    AfterValidator(check_card_token),
    WithJsonSchema(ID_SCHEMA | {"description": "A card token; raw card numbers are refused."}),
]
IpAddress = Annotated[
    str,
    AfterValidator(check_ip),
    WithJsonSchema({"anyOf": [{"type": "string", "format": f} for f in ("ipv4", "ipv6")]}),
]

EXAMPLE_TXN: dict[str, Any] = {
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


class Transaction(BaseModel):
    """One payment to decide on. Entities other than the user may be absent (null)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [EXAMPLE_TXN]},
    )

    txn_id: EntityId = Field(
        description="Unique id; a retry with the same id gets the same answer."
    )
    ts: AwareDatetime = Field(
        description="Event time, ISO 8601 text with a timezone (numbers are refused), at most "
        "the configured clock skew (300 s by default) in the future."
    )
    user_id: EntityId
    card_id: CardToken | None = Field(
        default=None, description="Card TOKEN; raw card numbers are refused."
    )
    device_id: EntityId | None = None
    ip: IpAddress | None = None
    merchant_id: EntityId | None = None
    amount: float = Field(
        description="Positive, finite, below the configured cap.",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    currency: str = Field(
        description="ISO 4217 code, upper case.",
        examples=["EUR"],
        json_schema_extra={"enum": list[JsonValue](sorted(ISO_4217))},
    )
    merchant_category: EntityId | None = None

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
        skew = _ctx(info, "max_future_skew_s", DEFAULT_MAX_FUTURE_SKEW_S)
        now = _ctx(info, "now", None) or datetime.now(UTC).timestamp()
        if v.timestamp() > now + skew:
            raise ValueError(f"must not be more than {skew:g} s in the future")
        return v.astimezone(UTC)

    @property
    def epoch(self) -> float:
        return self.ts.timestamp()

    def record(self) -> dict[str, Any]:
        """The `txn` part of the decision record of the stream contract."""
        return {
            "txn_id": self.txn_id,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "user_id": self.user_id,
            "card_id": self.card_id,
            "device_id": self.device_id,
            "ip": self.ip,
            "merchant_id": self.merchant_id,
            "amount": self.amount,
            "currency": self.currency,
        }


def _ctx(info: ValidationInfo, name: str, default: Any) -> Any:
    ctx = info.context
    if isinstance(ctx, dict) and ctx.get(name) is not None:
        return ctx[name]
    return default


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"transactions": [EXAMPLE_TXN]}]}
    )

    transactions: list[Transaction] = Field(min_length=1, max_length=100)


Outcome = Literal["approve", "review", "decline"]


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
