"""Every validation rule of a transaction, with hypothesis; raw card numbers never echoed."""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudring.contract.currencies import ISO_4217
from fraudring.contract.ids import holds_pan as looks_like_pan
from fraudring.contract.ids import luhn_ok
from realtime.schemas import Transaction
from tests.support.realtime import txn

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
CTX = {"amount_cap": 10_000.0, "max_future_skew_s": 300, "now": NOW.timestamp()}


def validate(**over: Any) -> Transaction:
    return Transaction.model_validate(txn(**over), context=CTX)


def errors_of(**over: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        validate(**over)
    return info.value.errors()


def fields(errs: list[Any]) -> set[str]:
    return {str(e["loc"][0]) for e in errs}


ID_FIELDS = ["txn_id", "user_id", "device_id", "merchant_id", "card_id"]
printable = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp", "Co", "Cn"]),
    min_size=1,
    max_size=128,
).filter(lambda s: s.isprintable() and s.strip() == s and not looks_like_pan(s))


@given(field=st.sampled_from(ID_FIELDS), value=printable)
def test_printable_ids_up_to_128_accepted(field: str, value: str) -> None:
    assert getattr(validate(**{field: value}), field) == value


@given(field=st.sampled_from(ID_FIELDS), value=st.text(min_size=129, max_size=300))
def test_ids_longer_than_128_refused(field: str, value: str) -> None:
    assert field in fields(errors_of(**{field: value}))


@given(
    field=st.sampled_from(ID_FIELDS),
    value=st.text(min_size=1, max_size=20).map(lambda s: s + "\x00"),
)
def test_non_printable_ids_refused(field: str, value: str) -> None:
    errs = errors_of(**{field: value})
    assert field in fields(errs)


@given(field=st.sampled_from(ID_FIELDS), value=st.sampled_from(["", " ", "   ", "\t"]))
def test_empty_ids_refused(field: str, value: str) -> None:
    assert field in fields(errors_of(**{field: value}))


def test_user_and_txn_ids_are_required_other_entities_optional() -> None:
    body = txn()
    del body["user_id"]
    with pytest.raises(ValidationError) as info:
        Transaction.model_validate(body, context=CTX)
    assert fields(info.value.errors()) == {"user_id"}
    t = validate(card_id=None, device_id=None, ip=None, merchant_id=None)
    assert t.card_id is None and t.ip is None


@given(amount=st.floats(min_value=0.01, max_value=9_999.99))
def test_amounts_inside_the_cap_accepted(amount: float) -> None:
    assert validate(amount=amount).amount == amount


@given(
    amount=st.one_of(
        st.floats(max_value=0.0),
        st.floats(min_value=10_000.0),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    )
)
def test_amounts_non_positive_capped_or_not_finite_refused(amount: float) -> None:
    assert fields(errors_of(amount=amount)) == {"amount"}


@given(code=st.sampled_from(sorted(ISO_4217)))
def test_iso_currencies_accepted(code: str) -> None:
    assert validate(currency=code).currency == code


@given(code=st.text(min_size=0, max_size=5).filter(lambda c: c not in ISO_4217))
def test_other_currencies_refused(code: str) -> None:
    assert fields(errors_of(currency=code)) == {"currency"}


@given(seconds=st.integers(min_value=-10 * 86400, max_value=300), tz=st.integers(-12, 14))
def test_aware_timestamps_not_too_far_ahead_accepted(seconds: int, tz: int) -> None:
    ts = (NOW + timedelta(seconds=seconds)).astimezone(timezone(timedelta(hours=tz)))
    t = validate(ts=ts.isoformat())
    assert t.ts.utcoffset() == timedelta(0) and t.epoch == pytest.approx(ts.timestamp())


@given(seconds=st.integers(min_value=301, max_value=10 * 365 * 86400))
def test_timestamps_in_the_future_refused(seconds: int) -> None:
    ts = NOW + timedelta(seconds=seconds)
    assert fields(errors_of(ts=ts.isoformat())) == {"ts"}


@given(ts=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1)))
def test_naive_timestamps_refused(ts: datetime) -> None:
    assert fields(errors_of(ts=ts.isoformat())) == {"ts"}


@given(ip=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_ip_addresses_accepted_and_normalised(ip: ipaddress.IPv4Address) -> None:
    assert validate(ip=str(ip).upper()).ip == ip.compressed


@given(ip=st.text(max_size=40))
def test_non_ip_strings_refused(ip: str) -> None:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        assert fields(errors_of(ip=ip)) == {"ip"}


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


pans = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(_luhn_complete)
)


def _separate(pan: str, seps: list[str]) -> str:
    return "".join(d + s for d, s in zip(pan, seps, strict=False)) + pan[len(seps) :]


@settings(max_examples=200)
@given(
    pan=pans,
    seps=st.lists(st.sampled_from(["", "", "", " ", "-"]), max_size=19),
)
def test_raw_card_numbers_refused_and_never_echoed(pan: str, seps: list[str]) -> None:
    value = _separate(pan, seps)
    errs = errors_of(card_id=value)
    assert fields(errs) == {"card_id"}
    reason = errs[0]["msg"]
    assert "raw card number" in reason
    assert pan not in reason and value not in reason


@given(
    token=st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=12),  # too short to be a PAN
        st.text(alphabet="0123456789", min_size=20, max_size=40),  # too long
        st.from_regex(r"tok_[A-Za-z0-9]{8,32}", fullmatch=True).filter(
            lambda t: not looks_like_pan(t)
        ),
    )
)
def test_card_tokens_accepted(token: str) -> None:
    assert validate(card_id=token).card_id == token


@given(pan=pans)
def test_luhn_failing_digit_strings_are_not_pans(pan: str) -> None:
    last = (int(pan[-1]) + 1) % 10
    assert not looks_like_pan(pan[:-1] + str(last))
    assert looks_like_pan(pan)


def test_unknown_fields_refused() -> None:
    assert "pan" in fields(errors_of(pan="x"))


def test_record_matches_the_stream_contract() -> None:
    rec = validate(ts="2026-11-25T19:00:00+01:00").record()
    assert rec["ts"] == "2026-11-25T18:00:00Z"
    assert set(rec) == {
        "txn_id",
        "ts",
        "user_id",
        "card_id",
        "device_id",
        "ip",
        "merchant_id",
        "amount",
        "currency",
    }
