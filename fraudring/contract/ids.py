"""Ids and entity kinds: the one rule every layer (API, loaders, stream, store) applies.

An id becomes a Redis key and a graph node id, so it must be something both can hold and nobody
can mistake: non-empty, at most `MAX_ID_LEN` characters, printable (no control, format,
separator or unassigned characters), no leading or trailing whitespace (FalkorDB 4.16 crashes
the whole server enforcing a unique constraint over an id that starts or ends with a space), and
no card number (PAN) anywhere in it. Reasons never repeat the value: a refused PAN must not
reach a 422 body or a log line.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Final, Literal

EntityKind = Literal["user", "card", "device", "ip", "merchant"]
#: Every entity kind of a transaction, in the order features and risks use.
ENTITY_KINDS: Final[tuple[EntityKind, ...]] = ("user", "card", "device", "ip", "merchant")
#: The kinds a user is linked to (the other end of every USED edge of the graph).
LINKED_KINDS: Final[tuple[EntityKind, ...]] = ("card", "device", "ip", "merchant")
#: Entity kind -> field of the transaction holding its id.
ID_FIELDS: Final[dict[str, str]] = {
    "user": "user_id",
    "card": "card_id",
    "device": "device_id",
    "ip": "ip",
    "merchant": "merchant_id",
}
#: The transaction field naming a transfer's receiving user (a user id, no entity kind of its
#: own: the graph ties the payee to the transfer's merchant node, its account).
PAYEE_FIELD: Final = "payee_user_id"

#: The longest id accepted for a transaction or an entity.
MAX_ID_LEN: Final = 128
PAN_MIN_DIGITS: Final = 13
PAN_MAX_DIGITS: Final = 19
#: Between the digit groups of a written card number: "4111 1111", "4111-1111", "4111.1111",
#: "4111/1111", "4111_1111", "tok_4111...", "4111...=2512" (track data).
_SEPARATORS: Final = frozenset(" -./_=:+,;|~*#\\\u00a0\u2010\u2011\u2012\u2013\u2014\u2212\u3000")
_MAX_GAP: Final = 3

PAN_REASON: Final = (
    "holds what looks like a raw card number (13-19 digits passing the Luhn check); "
    "send a card token from your vault instead"
)
#: A cheap test of which ids need the full check: pure printable ASCII needs only the space one.
ASCII_PRINTABLE: Final = re.compile(r"[ -~]*")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digit_runs(value: str) -> list[list[str]]:
    """Groups of decimal digits (any script, as ASCII) joined by short separator gaps."""
    runs: list[list[str]] = []
    groups: list[str] = []
    digits: list[str] = []
    gap = 0
    for ch in value:
        if ch.isdecimal():
            if gap > _MAX_GAP and groups:
                runs.append(groups)
                groups = []
            digits.append(str(unicodedata.decimal(ch)))
            gap = 0
            continue
        if digits:
            groups.append("".join(digits))
            digits = []
        if ch in _SEPARATORS or unicodedata.category(ch) in {"Zs", "Pd", "Po"}:
            gap += 1
        else:  # a letter or anything else ends the run
            if groups:
                runs.append(groups)
                groups = []
            gap = _MAX_GAP + 1
    if digits:
        groups.append("".join(digits))
    if groups:
        runs.append(groups)
    return runs


def holds_pan(value: str) -> bool:
    """True when some consecutive digit groups of `value` make 13-19 digits passing Luhn.

    A card number starts at the start of a digit group and ends at the end of one, so a long
    number (an order id of 20+ digits) is not refused for a Luhn-valid stretch inside it.
    """
    if sum(ch.isdecimal() for ch in value) < PAN_MIN_DIGITS:
        return False
    for groups in _digit_runs(value):
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > PAN_MAX_DIGITS:
                    break
                if len(digits) >= PAN_MIN_DIGITS and luhn_ok(digits):
                    return True
    return False


def id_problem(value: object) -> str | None:
    """Why `value` cannot be an id, or None when it can. The reason never holds the value."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LEN:
        return f"must be at most {MAX_ID_LEN} characters"
    if holds_pan(value):  # first: whatever else is wrong, say the one that matters
        return PAN_REASON
    if value != value.strip():
        return "must not start or end with whitespace"
    if not value.isprintable():
        return "must contain printable characters only (no control or format characters)"
    return None


def check_id(value: str) -> str:
    """The id itself, or ValueError with the reason (for pydantic validators)."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_ip(value: str) -> str:
    """The address in its compressed form; IPv4 or IPv6 only."""
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


def check_kind(kind: object) -> EntityKind:
    if kind not in ENTITY_KINDS:
        raise ValueError(f"must be one of {', '.join(ENTITY_KINDS)}")
    return kind


#: What the validators enforce, told to clients in the OpenAPI schema (generated clients and
#: API fuzzers read it); the Python checks stay the source of truth and the error messages.
ID_SCHEMA: Final[dict[str, object]] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LEN,
    "pattern": r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$",
    "description": f"Printable, at most {MAX_ID_LEN} characters, no leading or trailing "
    "whitespace, no card number.",
}

#: Ids this regex matches (RE2 and Rust regex syntax, for Arrow and polars) are printable ASCII,
#: 1 to MAX_ID_LEN long, without an outer space; unless MANY_DIGITS_PATTERN matches too (enough
#: ASCII digits for a card number) they are good without `id_problem`, which batch checks call
#: only on the rest.
FAST_ID_PATTERN: Final = rf"^[!-~](?:[ -~]{{0,{MAX_ID_LEN - 2}}}[!-~])?$"
MANY_DIGITS_PATTERN: Final = rf"(?:[0-9][^0-9]*){{{PAN_MIN_DIGITS}}}"


def first_problems(values: list[str | None]) -> dict[str, str]:
    """Each distinct non-null value of `values` that is not a good id, with its reason."""
    out: dict[str, str] = {}
    for value in set(values):
        if value is not None and value not in out:
            problem = id_problem(value)
            if problem is not None:
                out[value] = problem
    return out
