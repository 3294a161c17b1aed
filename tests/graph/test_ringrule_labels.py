"""Components from labels computed elsewhere (GDS WCC in Neo4j) group users exactly as the
union-find over the same links does, in the same order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graph.ringrule import Links, bounded, components, labelled
from graph.schemas import RingParams

_links = st.dictionaries(
    st.tuples(st.sampled_from(["card", "device", "ip", "merchant"]), st.sampled_from("abcdefgh")),
    st.lists(st.sampled_from([f"u{i}" for i in range(12)]), min_size=2, max_size=4, unique=True),
    max_size=10,
)


def _labels(links: Links) -> dict[str, int]:
    """Arbitrary component numbers (as a database would give), from the union-find's groups."""
    return {u: 1000 - i for i, c in enumerate(components(links)) for u in c.members}


@given(_links)
def test_labels_give_the_union_find_components(links: Links) -> None:
    got = labelled(links, _labels(links), min_size=2)
    want = components(links, min_size=2)
    assert [(c.members, c.entities) for c in got] == [(c.members, c.entities) for c in want]


def test_bounded_with_labels_splits_a_big_component_like_without() -> None:
    # one merchant chains two device pairs into a component of 4; max_size 3 splits it
    links: Links = {
        ("device", "d1"): ["u1", "u2"],
        ("device", "d2"): ["u3", "u4"],
        ("merchant", "m"): ["u2", "u3"],
    }
    params = RingParams(min_size=2, max_size=3)
    with_labels = bounded(links, params=params, comp_of={"u1": 7, "u2": 7, "u3": 7, "u4": 7})
    assert [c.members for c in with_labels[0]] == [["u1", "u2"], ["u3", "u4"]]
    assert [c.members for c in bounded(links, params=params)[0]] == [["u1", "u2"], ["u3", "u4"]]
