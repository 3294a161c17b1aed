"""Groups beyond a household flagged by their population (graph.ringshape): the pure rule,
the bound, and the store, full and incremental, on both backends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graph.repository import CypherStore
from graph.ringrule import Component
from graph.ringshape import lower_bound, shape_counts, shape_flag
from graph.schemas import RingParams, TxnRecord
from tests.graph.test_repository import T0, background, txn

P = RingParams()


def group(prefix: str, n: int) -> Component:
    return Component([f"{prefix}{k}" for k in range(n)], [("device", f"{prefix}-dev")])


@given(st.integers(0, 500), st.integers(0, 500))
def test_bound_is_below_the_share_and_rises_with_it(confirmed: int, extra: int) -> None:
    n = confirmed + extra
    lb = lower_bound(confirmed, n)
    assert 0.0 <= lb <= (confirmed / n if n else 0.0) + 1e-12
    if extra:
        assert lower_bound(confirmed + 1, n) >= lb  # one more confirmed group, same total


def test_confirmed_population_flags_the_rest_and_a_dorm_population_does_not() -> None:
    crews = [group(f"c{i}-", 6) for i in range(10)]
    rings = [Component(c.members[:3], c.entities, suspicious=True) for c in crews]
    quiet, household = group("q-", 6), group("h-", 4)
    groups = [*crews, quiet, household]
    assert shape_counts(groups, rings, P) == (10, 11)
    assert shape_flag(groups, shape_counts(groups, rings, P), P) == 11
    assert quiet.suspicious and quiet.flag == "shape" and not household.suspicious
    # the same crews among twenty dorms: most such groups never turned out to be rings
    dorms = [group(f"d{i}-", 12) for i in range(20)]
    quiet.suspicious = False
    for c in crews:
        c.suspicious = False
    groups = [*crews, *dorms, quiet]
    assert shape_counts(groups, rings, P) == (10, 31)
    assert shape_flag(groups, shape_counts(groups, rings, P), P) == 0
    assert shape_flag(groups, (10, 11), P.model_copy(update={"shape_share": 0.0})) == 0
    # one labelled member in a group is no confirmation
    one = [Component([c.members[0], "elsewhere"], c.entities, suspicious=True) for c in crews]
    assert shape_counts(crews, one, P) == (0, 10)


def crews(n: int, *, start: int = 0) -> list[TxnRecord]:
    """`n` crews of six, each on one phone."""
    return [
        txn(f"k{c}-{m}", f"k{c}-{m}", device=f"kdev{c}", ts=T0)
        for c in range(start, start + n)
        for m in range(6)
    ]


def test_store_flags_an_unlabelled_crew_where_crews_turn_out_rings(store: CypherStore) -> None:
    store.ingest(crews(8) + background())
    for c in range(7):
        for m in range(3):
            store.label(kind="txn", id=f"k{c}-{m}", label="fraud", by="ana", at=T0)
    full = store.detect_rings()
    quiet = frozenset(f"k7-{m}" for m in range(6))
    flagged = {frozenset(r.members): r.flagged_by for r in full.rings if r.suspicious}
    assert flagged.pop(quiet) == "shape"
    assert len(flagged) == 7 and set(flagged.values()) == {"labels"}
    stored = {frozenset(r.members): r.flagged_by for r in store.top_rings(100)}
    assert stored[quiet] == "shape"
    # a newcomer's crew: the incremental run flags it with the share the full run stored
    store.ingest(crews(1, start=8))
    inc = store.detect_rings(touched_users=["k8-0"])
    assert [r.suspicious for r in inc.rings if "k8-0" in r.members] == [True]
    # dorms of twelve: most groups beyond a household now never turned out rings
    store.ingest(
        [
            txn(f"d{d}-{m}", f"d{d}-{m}", device=f"ddev{d}", ts=T0)
            for d in range(20)
            for m in range(12)
        ]
    )
    again = store.detect_rings()
    assert {frozenset(r.members) for r in again.rings if r.suspicious} == {
        frozenset(f"k{c}-{m}" for m in range(6)) for c in range(7)
    }
