"""How evidence adds up along a group of entities (`graph.ringevidence.chained`), on hand-built
links: no store, the pure rule both the workers and the offline features run."""

from __future__ import annotations

from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graph.communities import communities
from graph.ringevidence import EvidenceLinks, evidence, evidence_rings, evidences
from graph.schemas import RingParams

RATES = {"device": 0.05, "ip": 0.05, "card": 0.05, "merchant": 0.05}
STRICT = RingParams(evidence_alpha=0.001)  # a labelled pair alone (0.05 ** 2) is not enough


def members(elinks: EvidenceLinks, params: RingParams) -> list[list[str]]:
    return sorted(r.members for r in evidence_rings(elinks, rates=RATES, params=params))


def relay(n: int) -> EvidenceLinks:
    """n labelled members, each consecutive pair on its own device."""
    return {
        ("device", f"d{k}"): ([f"v{k}", f"v{k + 1}"], [f"v{k}", f"v{k + 1}"]) for k in range(n - 1)
    }


def test_a_relay_is_as_strong_as_its_chain_not_its_weakest_pair() -> None:
    assert evidence(2, 2, RATES["device"]) > STRICT.evidence_alpha
    assert members(relay(2), STRICT) == []  # one labelled pair: not unusual enough
    assert members(relay(5), STRICT) == [[f"v{k}" for k in range(5)]]
    # ... and no entity joins the chain if it is no candidate at all
    assert members(relay(5), STRICT.model_copy(update={"chain_alpha": 1e-9})) == []


def test_the_same_pair_tied_twice_is_one_coincidence() -> None:
    pair = {
        ("device", "d"): (["a", "b"], ["a", "b"]),
        ("card", "c"): (["a", "b"], ["a", "b"]),
        ("ip", "i"): (["a", "b", "x"], ["a", "b"]),
    }
    assert members(pair, STRICT) == []


def crews(*bridges: tuple[str, list[str], list[str]]) -> EvidenceLinks:
    """Two crews of three, each on its own device, and `bridges` between them."""
    out: EvidenceLinks = {
        ("device", "d1"): (["a1", "a2", "a3"], ["a1", "a2", "a3"]),
        ("device", "d2"): (["b1", "b2", "b3"], ["b1", "b2", "b3"]),
    }
    for key, users, bad in bridges:
        out[("card", key)] = (users, bad)
    return out


A = ["a1", "a2", "a3"]
B = ["b1", "b2", "b3"]
LOOSE = RingParams(evidence_alpha=0.01)  # the stolen card alone would pass


def test_a_stolen_card_two_crews_tested_does_not_merge_them() -> None:
    """The card's owner still uses it (unlabelled): one such card between two crews that stand
    on their own is weaker than the ties that hold either together."""
    card = evidence(3, 2, RATES["card"])
    assert card <= LOOSE.evidence_alpha
    one = crews(("c1", ["a1", "b1", "owner"], ["a1", "b1"]))
    assert members(one, LOOSE) == [A, B]


def test_parallel_ties_or_a_pair_nobody_else_uses_join_two_groups() -> None:
    two = crews(
        ("c1", ["a1", "b1", "owner1"], ["a1", "b1"]),
        ("c2", ["a2", "b2", "owner2"], ["a2", "b2"]),
    )
    [ring] = members(two, LOOSE)
    assert set(A + B) <= set(ring)  # (the owners come along: labels are 2/3 of each card)
    pair = crews(("c1", ["a1", "b1"], ["a1", "b1"]))  # a relay's pair: only the two use it
    assert members(pair, LOOSE) == [sorted(A + B)]


def test_a_shop_two_crews_came_back_to_does_not_merge_them() -> None:
    """A shop ties only its repeat customers: here a member of each crew, both labelled. Read
    alone it looks like a pair nobody else uses; but 40 customers came once, and two crews
    cashing out at one shop are not one crew."""
    links = crews()
    links[("merchant", "shop")] = (["a1", "b1"], ["a1", "b1"])
    assert members(links, LOOSE) == [sorted(A + B)]
    untied = {("merchant", "shop"): 40}
    rings = evidence_rings(links, rates=RATES, params=LOOSE, untied=untied)
    assert sorted(r.members for r in rings) == [A, B]


@pytest.mark.parametrize("order", [1, -1])
def test_the_result_does_not_depend_on_the_order_links_come_in(order: int) -> None:
    links = crews(
        ("c1", ["a1", "b1", "owner1"], ["a1", "b1"]),
        ("c2", ["a2", "b2", "owner2"], ["a2", "b2"]),
    )
    links.update({("ip", k[1]): v for k, v in relay(4).items()})
    shuffled = dict(list(links.items())[::order])
    assert members(shuffled, LOOSE) == members(links, LOOSE)


entity = st.integers(1, 40).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n), st.floats(1e-4, 0.5))
)


@given(st.lists(entity, min_size=1, max_size=8))
def test_evidences_are_each_entitys_binomial_tail(rows: list[tuple[int, int, float]]) -> None:
    """The vectorised tails, entity by entity, are P(at least `bad` of `users` labelled)."""
    tails = evidences(*zip(*rows, strict=True))
    for (n, b, r), got in zip(rows, tails, strict=True):
        exact = sum(comb(n, k) * r**k * (1 - r) ** (n - k) for k in range(b, n + 1))
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_an_evidence_group_beyond_max_size_is_split_without_its_merchants() -> None:
    """Two labelled trios, each on its own device, chained by shops their members all used
    (the handbook's compromised terminals chain thousands this way): with `max_size` 4 the
    shops are dropped and the two crews stand; a chain of shops alone stands for nothing."""
    crews: EvidenceLinks = {
        ("device", "dA"): (["a1", "a2", "a3"], ["a1", "a2", "a3"]),
        ("device", "dB"): (["b1", "b2", "b3"], ["b1", "b2", "b3"]),
        ("merchant", "m1"): (["a3", "b1"], ["a3", "b1"]),
    }
    shops = {("merchant", k): v for (_kind, k), v in relay(6).items()}
    small = RingParams(max_size=4)
    assert members(crews, RingParams()) == [["a1", "a2", "a3", "b1", "b2", "b3"]]
    assert members(crews, small) == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    assert len(members(shops, RingParams())) == 1
    assert members(shops, small) == []


def test_crews_chained_by_a_coincidence_beyond_max_size_stand_as_communities() -> None:
    """Two labelled crews of four, each tied by devices every member shares, and one dynamic IP
    a member of each once used (only labelled users share it, so it joins them): beyond
    `max_size`, with no merchant to drop, the group is cut where it is weakest, into the
    crews, instead of being given up."""
    links: EvidenceLinks = {("ip", "dyn"): (["a4", "b1"], ["a4", "b1"])}
    for crew in ("a", "b"):
        team = [f"{crew}{k}" for k in range(1, 5)]
        for d in range(3):
            links[("device", f"{crew}{d}")] = (team, team)
    assert members(links, RingParams()) == [["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]]
    assert members(links, RingParams(max_size=6)) == [
        ["a1", "a2", "a3", "a4"],
        ["b1", "b2", "b3", "b4"],
    ]


def test_one_crew_beyond_max_size_stands_whole_as_its_own_community() -> None:
    """A takeover crew of six on its phone and its proxies is one community: beyond `max_size`
    it stands whole rather than being given up."""
    crew = [f"v{k}" for k in range(1, 7)]
    links: EvidenceLinks = {("device", "phone"): (crew, crew)}
    links.update({("ip", f"proxy{k}"): (crew, crew) for k in range(3)})
    assert members(links, RingParams(max_size=4)) == [crew]


@pytest.mark.parametrize("clique_max", [2, 100])
def test_a_big_proxy_cuts_like_the_clique_it_stands_for(clique_max: int) -> None:
    """Two crews of five, each on a proxy of its own, tied by one IP a member of each used: an
    entity beyond `clique_max` is one node tied to its users, not a clique of them (whose
    pairs grow with the square of its users), and the cut is the same: the two crews."""
    links: dict[tuple[str, str], list[str]] = {("ip", "dyn"): ["a5", "b1"]}
    for crew in ("a", "b"):
        links[("ip", f"proxy-{crew}")] = [f"{crew}{k}" for k in range(1, 6)]
    users = sorted(u for us in links.values() for u in us)
    tails = {key: 1e-6 for key in links} | {("ip", "dyn"): 0.01}
    got = communities(
        sorted(set(users)), sorted(links), links=links, tails=tails, clique_max=clique_max
    )
    assert [m for m, _e in got] == [[f"a{k}" for k in range(1, 6)], [f"b{k}" for k in range(1, 6)]]
    assert [e for _m, e in got] == [[("ip", "proxy-a")], [("ip", "proxy-b")]]


def test_a_hub_beyond_the_cap_ties_only_where_labels_are_rare_in_its_kind() -> None:
    """600 users on one IP, 360 of them labelled (60%, beyond `evidence_cap` 50; unusual at
    either rate): a crew's proxy where a twentieth of the kind's users are labelled; where
    nearly half are, a hub."""
    users = [f"u{k:03d}" for k in range(600)]
    links: EvidenceLinks = {("ip", "hub"): (users, users[:360])}
    rare = evidence_rings(links, rates={"ip": 0.05}, params=RingParams())
    assert [len(r.members) for r in rare] == [600]
    assert evidence_rings(links, rates={"ip": 0.45}, params=RingParams()) == []


def test_a_stolen_cards_owner_who_keeps_paying_with_it_is_no_tester() -> None:
    """Two testers charged the card once each, its owner thirty times: labels are 2 of its 3
    users but 2 of its 32 payments, so the owner stays out; a controller device the third
    member used as much as the others brings that member in."""
    links: EvidenceLinks = {("card", "c"): (["owner", "t1", "t2"], ["t1", "t2"])}
    assert members(links, LOOSE) == [["owner", "t1", "t2"]]
    rings = evidence_rings(links, rates=RATES, params=LOOSE, labelled_use={("card", "c"): 2 / 32})
    assert [r.members for r in rings] == [["t1", "t2"]]
    device: EvidenceLinks = {("device", "d"): (["m1", "m2", "m3"], ["m1", "m2"])}
    rings = evidence_rings(device, rates=RATES, params=LOOSE, labelled_use={("device", "d"): 0.6})
    assert [r.members for r in rings] == [["m1", "m2", "m3"]]
