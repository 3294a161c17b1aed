"""The statistics cache entry is parsed on the decision's hot path: never an error, never a
wrongly sized entry, and what the workers write reads back exactly."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from realtime.keys import MERCHANT_STATS_SIZE, EntityStats

floats = st.floats(allow_nan=True, allow_infinity=False, width=64)


@given(st.lists(floats, min_size=MERCHANT_STATS_SIZE, max_size=MERCHANT_STATS_SIZE))
def test_round_trip(values: list[float]) -> None:
    back = EntityStats.loads(EntityStats(tuple(values)).dumps(), size=MERCHANT_STATS_SIZE)
    assert back is not None
    for a, b in zip(back.values, values, strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == b


@given(st.binary(max_size=200))
def test_garbage_is_unknown_not_an_error(raw: bytes) -> None:
    out = EntityStats.loads(raw, size=MERCHANT_STATS_SIZE)
    assert out is None or len(out.values) == MERCHANT_STATS_SIZE


def test_wrong_size_is_unknown() -> None:
    assert EntityStats.loads(b"1.0,2.0", size=MERCHANT_STATS_SIZE) is None
    assert EntityStats.loads(b"", size=1) is None
    assert EntityStats.loads(b"nan", size=1) is not None


def test_every_key_family_is_bounded_and_documented() -> None:
    """realtime.keys.KEY_BOUNDS is the one list; the scaling page prints it."""
    from pathlib import Path

    from realtime.keys import KEY_BOUNDS

    page = (Path(__file__).resolve().parents[1] / "docs" / "scaling.md").read_text()
    for family, (where, bound) in KEY_BOUNDS.items():
        assert where in {"state", "main"} and bound
        assert f"| `{family}` | {where} | {bound} |" in page, family
