"""The shared contract: one id rule (whitespace, printable, card numbers anywhere in any id),
time bounds and amount types, checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudring.contract.ids import (
    ID_SCHEMA,
    MAX_ID_LEN,
    PAN_REASON,
    first_problems,
    holds_pan,
    id_problem,
    luhn_ok,
)
from fraudring.contract.transaction import DecisionRecord, Transaction
from tests.support.realtime import txn

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp()
CTX = {"amount_cap": 10_000.0, "max_future_skew_s": 300, "now": NOW}
ID_FIELDS = [
    "txn_id",
    "user_id",
    "card_id",
    "device_id",
    "merchant_id",
    "merchant_category",
    "payee_user_id",
]
PAN = "4111111111111111"


def _luhn_complete(body: str) -> str:
    return next(body + c for c in "0123456789" if luhn_ok(body + c))


pans = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(_luhn_complete)
)
#: Decimal digits of other scripts: full-width, Arabic-Indic, Devanagari.
SCRIPTS = {"ascii": 0x30, "fullwidth": 0xFF10, "arabic": 0x660, "devanagari": 0x966}


def errors(**over: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        Transaction.model_validate(txn(**over), context=CTX)
    return info.value.errors()


@given(
    field=st.sampled_from(ID_FIELDS),
    core=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
    pad=st.sampled_from([" ", "  ", "\u00a0", "\u3000", "\t", "\n"]),
    where=st.sampled_from(["start", "end", "both"]),
)
def test_ids_with_outer_whitespace_refused(field: str, core: str, pad: str, where: str) -> None:
    value = {"start": pad + core, "end": core + pad, "both": pad + core + pad}[where]
    errs = errors(**{field: value})
    assert [e["loc"][0] for e in errs] == [field]
    assert "whitespace" in str(errs[0]["msg"]) or "printable" in str(errs[0]["msg"])


@given(
    field=st.sampled_from(ID_FIELDS),
    pan=pans,
    script=st.sampled_from(sorted(SCRIPTS)),
    sep=st.sampled_from(["", " ", "-", ".", "/", "_", "\u00a0"]),
    wrap=st.sampled_from(["{}", "tok_{}", "{}=2512", "x{}y", "card:{}", "{}/exp"]),
)
def test_card_numbers_in_any_id_refused_never_echoed(
    field: str, pan: str, script: str, sep: str, wrap: str
) -> None:
    digits = "".join(chr(SCRIPTS[script] + int(d)) for d in pan)
    written = sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    value = wrap.format(written)
    assert holds_pan(value)
    errs = errors(**{field: value})
    assert [e["loc"][0] for e in errs] == [field]
    msg = str(errs[0]["msg"])
    assert "card number" in msg and pan not in msg and value not in msg


@given(n=st.integers(min_value=20, max_value=60), seed=st.integers(0, 10**6))
def test_long_numbers_are_not_card_numbers(n: int, seed: int) -> None:
    """An order number of 20+ digits has Luhn-valid stretches; it is not a card number."""
    value = str(10 ** (n - 1) + seed)
    assert not holds_pan(value) and id_problem(value) is None


@given(value=st.text(max_size=MAX_ID_LEN + 10))
def test_one_rule_batch_and_single(value: str) -> None:
    """The store's batch check and the API's single check agree, and never echo the value."""
    problem = id_problem(value)
    assert first_problems([value, None]) == ({value: problem} if problem else {})
    if problem is not None:
        assert value not in problem or len(value) < 3


@given(value=st.text(min_size=1, max_size=MAX_ID_LEN))
def test_schema_pattern_never_refuses_a_good_id(value: str) -> None:
    import re

    if id_problem(value) is None:
        assert re.search(str(ID_SCHEMA["pattern"]), value)


def test_pan_reason_is_fixed_text() -> None:
    assert id_problem(PAN) == PAN_REASON and PAN not in PAN_REASON


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+00:01",
        "0001-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59-00:01",
        "1999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
    ],
)
def test_times_out_of_bounds_are_422_not_overflow(ts: str) -> None:
    errs = errors(ts=ts)
    assert [e["loc"][0] for e in errs] == ["ts"]


@given(ts=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_any_time_validates_or_refuses(ts: datetime) -> None:
    body = txn(ts=ts.isoformat() + "+01:00")
    epoch = ts.replace(tzinfo=UTC).timestamp() - 3600
    if 946_684_800 <= epoch <= NOW + 300:
        assert Transaction.model_validate(body, context=CTX).epoch == epoch
    else:
        with pytest.raises(ValidationError) as info:
            Transaction.model_validate(body, context=CTX)
        assert [e["loc"][0] for e in info.value.errors()] == ["ts"]


@pytest.mark.parametrize("amount", [True, False])
def test_booleans_are_not_amounts(amount: bool) -> None:
    errs = errors(amount=amount)
    assert [e["loc"][0] for e in errs] == ["amount"]
    import orjson

    with pytest.raises(ValidationError):
        Transaction.model_validate_json(orjson.dumps(txn(amount=amount)), context=CTX)


def test_stream_record_is_the_transaction_contract() -> None:
    body = {
        "txn": txn(user_id="u-1 "),
        "decision": "approve",
        "score": None,
        "decided_at": NOW,
        "model_version": None,
        "degraded": False,
    }
    with pytest.raises(ValidationError) as info:
        DecisionRecord.model_validate(body, context=CTX)
    assert info.value.errors()[0]["loc"] == ("txn", "user_id")


def test_body_hash_is_canonical() -> None:
    a = Transaction.model_validate(txn(), context=CTX)
    b = Transaction.model_validate(
        dict(reversed(list(txn(ts="2026-11-25T19:00:00+01:00").items()))), context=CTX
    )
    assert a.body_hash() == b.body_hash()
    c = Transaction.model_validate(txn(amount=999.0), context=CTX)
    assert c.body_hash() != a.body_hash()


def test_a_transfer_names_its_payee_whose_account_is_the_counterparty() -> None:
    """Without a merchant_id a transfer is paid to the payee's own account; the payee is in the
    stream record only when there is one, so the idempotency hash of a payment is unchanged."""
    t = Transaction.model_validate(txn(merchant_id=None, payee_user_id="u-7"), context=CTX)
    assert (t.merchant_id, t.payee_user_id) == ("u-7", "u-7")
    assert t.record()["payee_user_id"] == "u-7"
    assert DecisionRecord.model_validate(
        {"txn": t.record(), "decision": "approve", "score": 0.1, "decided_at": NOW,
         "model_version": None, "degraded": False}, context=CTX
    ).txn == t  # fmt: skip
    given_account = Transaction.model_validate(txn(payee_user_id="u-7"), context=CTX)
    assert given_account.merchant_id == txn()["merchant_id"]
    plain = Transaction.model_validate(txn(), context=CTX)
    assert "payee_user_id" not in plain.record()
    assert plain.body_hash() != given_account.body_hash()
    with pytest.raises(ValidationError) as info:
        Transaction.model_validate(txn(merchant_id=None, payee_user_id=PAN), context=CTX)
    assert [e["loc"] for e in info.value.errors()] == [("payee_user_id",)]  # named once
