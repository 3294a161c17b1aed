"""Ring evidence, entity evidence and history over tiny hand-built graphs."""

from __future__ import annotations

import math

import pytest

from fraudring.errors import InvalidInput
from graph.formats import ring_subgraph, to_graphml
from graph.repository import CypherStore
from graph.ringrule import risk, risk_terms
from graph.schemas import GraphNotFound, TxnRecord

T0 = 1_750_000_000.0


def rec(
    i: int, user: str, *, device: str, ip: str | None = None, card: str | None = None
) -> TxnRecord:
    return TxnRecord(
        f"t{i}", T0 + i * 60, user, card or f"card-{user}", device, ip, f"m{i % 2}", 10.0 + i
    )


@pytest.fixture
def ring_store(store: CypherStore) -> CypherStore:
    # a1..a3 share device dA; a3 and a4 share device dB: dA carries most of the ring.
    store.ingest(
        [
            rec(1, "a1", device="dA"),
            rec(2, "a2", device="dA"),
            rec(3, "a3", device="dA"),
            rec(4, "a3", device="dB"),
            rec(5, "a4", device="dB"),
            rec(6, "a4", device="dB"),
            rec(7, "b1", device="dZ"),
        ]
    )
    store.label(kind="txn", id="t1", label="fraud", by="test", at=T0 + 3600)
    store.detect_rings()
    return store


def test_links_are_ranked_by_the_risk_they_carry(ring_store: CypherStore) -> None:
    (ring,) = ring_store.top_rings(5)
    ev = ring_store.ring_evidence(ring.id)
    assert [(x.kind, x.id) for x in ev.links] == [("device", "dA"), ("device", "dB")]
    top, second = ev.links
    assert top.members == ["a1", "a2", "a3"] and top.left_apart == 2
    assert second.members == ["a3", "a4"] and second.left_apart == 1
    assert top.risk_drop > second.risk_drop > 0
    assert top.fraud_txn_n == 1 and top.others == 0
    assert top.first_seen == T0 + 60 and top.last_seen == T0 + 180
    # the parts add up to the stored risk
    c = ev.components
    assert math.isclose(c.fraud_rate + c.size + c.density + c.youth, ring.risk, abs_tol=1e-3)
    assert "dA" in ev.narrative and ring.id in ev.narrative
    assert {m.id for m in ev.members} == {"a1", "a2", "a3", "a4"}
    assert next(m for m in ev.members if m.id == "a1").fraud
    assert ev.typology in {"synthetic_identity", "card_testing", "ato", "mule"}
    assert ring_store.payee_accounts({"m0", "m1"}) == set()  # shops, paid with amounts


def test_a_payees_account_reads_as_its_account_not_a_merchant(store: CypherStore) -> None:
    """Three accounts each paying the next twice: the counterparties are the payees' accounts,
    named as such with their owner, and their transactions are the transfers, not receipts."""
    cycle = [("L1", "L2"), ("L2", "L3"), ("L3", "L1")]
    store.ingest(
        [
            TxnRecord(f"x{k}{i}", T0 + 600 * k + i, u, None, None, None, None, 50.0, v)
            for k in (0, 1)
            for i, (u, v) in enumerate(cycle)
        ]
    )
    store.label(kind="txn", id="x00", label="fraud", by="ana", at=T0 + 900)  # L1 -> L2
    store.detect_rings()
    (ring,) = store.top_rings(5)
    ev = store.ring_evidence(ring.id)
    l2 = next(x for x in ev.links if x.id == "L2")
    assert (l2.kind, l2.account_of, l2.members, l2.txn_n) == ("merchant", "L2", ["L1", "L2"], 2)
    assert l2.fraud_txn_n == 1  # the transfer, not its receipt too
    assert "account L2 (of L2) ties 2 members" in ev.narrative
    assert "merchant" not in ev.narrative and "accounts they pay again" in ev.narrative
    assert store.payee_accounts({"L1", "L2", "L3", "nope"}) == {"L1", "L2", "L3"}
    # pictures and exports name each account's owner (its receipt edge carries no amount)
    hood = store.neighbourhood("user", "L1", hops=2)
    assert {n.id: n.props.get("account_of") for n in hood.nodes if n.kind == "merchant"} == {
        "L1": "L1",
        "L2": "L2",
    }
    sub = ring_subgraph(store, ring.id)
    assert sorted(str(n.props["account_of"]) for n in sub.nodes if n.kind == "merchant") == [
        "L1",
        "L2",
        "L3",
    ]
    assert '<data key="account_of">L2</data>' in to_graphml(sub).decode()


def test_an_account_the_members_pay_once_is_named_an_account(store: CypherStore) -> None:
    """Three members on one device each pay account P once: P ties no one (nobody pays it
    again), yet the mule reason that it lives off the ring names it an account."""
    store.ingest(
        [
            TxnRecord(f"p{i}", T0 + 60 * i, f"r{i}", None, "dR", None, None, 20.0, "P")
            for i in range(3)
        ]
    )
    for i in range(3):
        store.label(kind="txn", id=f"p{i}", label="fraud", by="ana", at=T0 + 900)
    store.detect_rings()
    ring = next(r for r in store.top_rings(5) if "r0" in r.members)
    assert ("merchant", "P") not in {(e.kind, e.id) for e in ring.shared_entities}
    mule = next(t for t in store.ring_evidence(ring.id).typologies if t.typology == "mule")
    assert mule.reasons == [
        "0% of the members are tied by accounts they pay again",
        "account P: 75% of its users are members",
    ]


def test_two_crews_that_came_back_to_one_shop_stay_two_rings(store: CypherStore) -> None:
    """Each crew stands on its own phone; one member of each came back to a shop that twelve
    customers visited once. The shop ties only its repeat customers, both labelled, but it is
    where crews cash out, not a pair nobody else uses (`graph.ringevidence.chained`)."""

    def pay(tid: str, user: str, device: str, shop: str, k: int) -> TxnRecord:
        return TxnRecord(tid, T0 + 60 * k, user, f"card-{user}", device, None, shop, 20.0)

    recs = [
        pay(f"{u}{v}", u, f"phone-{u[0]}", "kiosk", k)
        for k, (u, v) in enumerate((u, v) for u in ("a1", "b1") for v in "xy")
    ]
    recs += [pay(f"{u}-own", u, f"phone-{u[0]}", f"shop-{u}", 10) for u in ("a2", "a3", "b2", "b3")]
    recs += [pay(f"once{k}", f"once{k}", f"dev-once{k}", "kiosk", 20 + k) for k in range(12)]
    for k in range(40):  # the population: own phones, regulars of their corner shops
        recs += [pay(f"bg{k}{v}", f"bg{k}", f"dev-bg{k}", f"corner{k}", 40 + k) for v in "xy"]
    store.ingest(recs)
    for r in recs[:8]:
        store.label(kind="txn", id=r.txn_id, label="fraud", by="test", at=T0 + 9_000)
    store.detect_rings()
    rings = sorted(sorted(r.members) for r in store.top_rings(10))
    assert rings == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]


def test_risk_is_recency_times_its_terms() -> None:
    terms = risk_terms(fraud_rate=0.5, size=7, dens=0.3, age_days=12.0)
    whole = risk(fraud_rate=0.5, size=7, dens=0.3, age_days=12.0, idle_days=3.0)
    assert whole == math.exp(-3 / 14) * sum(terms.values())


def test_entity_evidence_and_unknown_ids(ring_store: CypherStore) -> None:
    ev = ring_store.entity_evidence("device", "dA")
    assert ev.degree == 3 and ev.txn_n == 3 and len(ev.rings) == 1
    user = ring_store.entity_evidence("user", "a1")
    assert user.rings == ev.rings and user.fraud_txn_n == 1
    assert ring_store.entity_evidence("user", "b1").rings == []
    with pytest.raises(GraphNotFound, match="nope"):
        ring_store.entity_evidence("device", "nope")
    with pytest.raises(GraphNotFound, match="ring-nope"):
        ring_store.ring_evidence("ring-nope")


def test_transactions_page_newest_first(ring_store: CypherStore) -> None:
    page = ring_store.transactions("device", "dB", limit=2)
    assert [t.txn_id for t in page.transactions] == ["t6", "t5"]
    assert page.next_before == T0 + 300
    rest = ring_store.transactions("device", "dB", limit=2, before=page.next_before)
    assert [t.txn_id for t in rest.transactions] == ["t4"] and rest.next_before is None
    mine = ring_store.transactions("user", "a1")
    assert [t.label for t in mine.transactions] == ["fraud"]
    with pytest.raises(GraphNotFound, match="zz"):
        ring_store.transactions("user", "zz")
    with pytest.raises(InvalidInput):
        ring_store.transactions("user", "a1", limit=0)


def test_ring_timeline(ring_store: CypherStore) -> None:
    (ring,) = ring_store.top_rings(5)
    tl = ring_store.ring_timeline(ring.id)
    joined = {e.member: e.ts for e in tl.events if e.event == "joined"}
    assert joined == {"a1": T0 + 60, "a2": T0 + 120, "a3": T0 + 180, "a4": T0 + 300}
    assert sum(d.txn_n for d in tl.days) == 6 and sum(d.fraud_txn_n for d in tl.days) == 1


def test_a_member_labelled_legitimate_leaves_the_fraud_count(ring_store: CypherStore) -> None:
    """a1's transaction is labelled fraud; an investigator clears a1 itself: the ring no longer
    counts it ("1 of 4" must become "0 of 4"), nor does its evidence, and the risk drops."""
    (ring,) = ring_store.top_rings(5)
    assert ring.fraud_n == 1
    ring_store.label(kind="user", id="a1", label="legitimate", by="ines", at=T0 + 7200)
    update = ring_store.detect_rings(touched_users=["a1"])
    (after,) = [r for r in update.rings if r.id == ring.id]
    assert (after.fraud_n, after.fraud_rate) == (0, 0.0)
    assert after.risk < ring.risk
    ev = ring_store.ring_evidence(ring.id)
    assert not next(m for m in ev.members if m.id == "a1").fraud
    assert "0 with fraud on record" in ev.narrative
    # a fraud label on the member itself still counts
    ring_store.label(kind="user", id="a1", label="fraud", by="ines", at=T0 + 7300)
    ring_store.detect_rings(touched_users=["a1"])
    assert ring_store.ring(ring.id).fraud_n == 1
