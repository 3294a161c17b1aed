"""List entries: the decision's reading of them (pure) and their cache format."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from realtime.keys import ListEntry
from realtime.lists import apply


def entry(action: str, *, kind: str = "device", id: str = "d7", ttl: float = 3600) -> ListEntry:
    now = time.time()
    return ListEntry(
        kind=kind, id=id, action=action, reason="why", by="ines", at=now, expires_at=now + ttl
    )


def test_block_beats_everything_and_is_named() -> None:
    decision, rules, notes = apply(
        "approve", [entry("allow", kind="user", id="u1"), entry("block")]
    )
    assert decision == "decline"
    assert {"name": "block_list:device:d7", "action": "decline", "score": None} in rules
    assert any("block list" in n and "ines" in n for n in notes)


def test_step_up_raises_an_approve_only() -> None:
    assert apply("approve", [entry("step_up")])[0] == "review"
    assert apply("decline", [entry("step_up")])[0] == "decline"


def test_allow_approves_when_nothing_is_blocked() -> None:
    assert apply("decline", [entry("allow")])[0] == "approve"
    assert apply("review", [entry("allow"), entry("step_up", id="d8")])[0] == "review"


def test_an_expired_entry_is_ignored() -> None:
    assert apply("approve", [entry("block", ttl=-1)]) == ("approve", [], [])


def test_round_trip() -> None:
    e = entry("block")
    assert ListEntry.loads(e.dumps()) == e


@given(st.binary(max_size=300))
def test_a_malformed_cache_entry_is_ignored_never_an_error(raw: bytes) -> None:
    got = ListEntry.loads(raw)
    assert got is None or isinstance(got, ListEntry)


@given(
    st.dictionaries(
        st.sampled_from(["kind", "id", "action", "reason", "by", "at", "expires_at"]),
        st.one_of(st.text(max_size=5), st.floats(), st.integers(), st.none()),
    )
)
def test_a_wrong_typed_entry_is_ignored_by_the_decision(fields: dict[str, object]) -> None:
    import orjson

    got = ListEntry.loads(orjson.dumps(fields, option=orjson.OPT_SERIALIZE_NUMPY))
    if got is not None:
        apply("approve", [got])  # never raises
