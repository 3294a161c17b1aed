"""Graph store on tiny hand-built graphs, on every backend available.

Each test runs on FalkorDB (embedded) and on Neo4j: the server NEO4J_URI names, else the local
one of tools/neo4j (tests/conftest.py). That database must be disposable: each Neo4j test
empties it first.
"""

from __future__ import annotations

import math

import pytest

from fraudring.settings import load_settings
from graph.evidence import stored_rates
from graph.repository import CypherStore
from graph.ringevidence import evidence
from graph.schemas import EntityRef, GraphNotFound, InvalidGraphId, RingParams, TxnRecord
from graph.service import open_store

DAY = 86400.0
T0 = 1_750_000_000.0


def txn(
    i: int | str,
    user: str,
    *,
    card: str | None = None,
    device: str | None = None,
    ip: str | None = None,
    merchant: str | None = None,
    ts: float = T0,
    amount: float = 10.0,
    payee: str | None = None,
) -> TxnRecord:
    return TxnRecord(str(i), ts, user, card, device, ip, merchant, amount, payee)


def count(store: CypherStore, label: str = "") -> int:
    return int(store._read(f"MATCH (n{':' + label if label else ''}) RETURN count(n)")[0][0])


def edge(store: CypherStore, user: str, kind: str, entity: str) -> dict[str, float]:
    nb = store.neighbourhood("user", user, hops=1, max_nodes=1000)
    for e in nb.edges:
        if e.kind == kind and e.entity_id == entity:
            return e.model_dump()
    raise AssertionError(f"no edge {user}->{kind}:{entity}")


def ring_sets(store: CypherStore) -> dict[str, frozenset[str]]:
    return {r.id: frozenset(r.members) for r in store.top_rings(1000)}


# --- ingest -----------------------------------------------------------------------------------


def test_ingest_aggregates_edges_and_is_idempotent(store: CypherStore) -> None:
    batch = [
        txn(1, "u1", card="c1", device="d1", ip="ip1", merchant="m1", ts=T0, amount=5),
        txn(2, "u1", card="c1", device="d1", ip="ip2", merchant="m1", ts=T0 + 60, amount=7),
        txn(2, "u1", card="c1", device="d1", ip="ip2", merchant="m1", ts=T0 + 60, amount=7),
        txn(3, "u2", card="c2", ts=T0 + 120, amount=1),
    ]
    res = store.ingest(batch)
    assert (res.received, res.ingested, res.duplicates) == (4, 3, 1)
    nodes = count(store)
    again = store.ingest(batch)
    assert (again.ingested, again.duplicates) == (0, 4)
    assert count(store) == nodes
    e = edge(store, "u1", "card", "c1")
    assert (e["n"], e["amount_sum"], e["first_seen"], e["last_seen"]) == (2, 12.0, T0, T0 + 60)
    # a batch overlapping a stored one only adds its new transactions
    res = store.ingest([batch[0], txn(4, "u1", card="c1", ts=T0 - 60, amount=1)])
    assert (res.ingested, res.duplicates) == (1, 1)
    e = edge(store, "u1", "card", "c1")
    assert (e["n"], e["amount_sum"], e["first_seen"]) == (3, 13.0, T0 - 60)
    assert count(store, "Txn") == 4


def test_a_transfer_ties_its_payee_to_the_account_its_payers_pay(store: CypherStore) -> None:
    """A transfer names its payee: the payee is a user of the graph, tied to the counterparty
    (its account; the payee's id when no merchant is given) with its receipts counted and
    amount 0, while the ledger keeps one row per transfer."""
    store.ingest(
        [
            txn("x1", "p1", payee="q1", ts=T0, amount=50),
            txn("x2", "p2", payee="q1", ts=T0 + 60, amount=20),
            txn("x3", "p1", merchant="acct-q2", payee="q2", ts=T0 + 120, amount=5),
        ]
    )
    assert (edge(store, "p1", "merchant", "q1")["n"], edge(store, "p2", "merchant", "q1")["n"]) == (
        1,
        1,
    )
    receipts = edge(store, "q1", "merchant", "q1")
    assert (receipts["n"], receipts["amount_sum"], receipts["first_seen"]) == (2, 0.0, T0)
    assert edge(store, "q2", "merchant", "acct-q2")["n"] == 1
    assert count(store, "Txn") == 3
    assert store.txn_users("x1") == {"p1", "q1"}


def test_a_fraudulent_transfer_labels_its_payee_too(store: CypherStore) -> None:
    """Before: a labelled transfer counted for its payer only, so a fan-out's payees (one payer
    labelled, every mule it fed not) were never two labelled members: 0 of 136 AMLSim fan-out
    patterns found."""
    store.ingest(
        [
            txn("x1", "p1", payee="q1", ts=T0, amount=50),
            txn("x2", "p1", payee="q1", ts=T0 + 60, amount=20),
            txn("x3", "q1", payee="q1", ts=T0 + 90, amount=1),  # to itself: counted once
        ]
    )
    store.label(kind="txn", id="x1", label="fraud", by="ana", at=T0 + 100)
    store.label(kind="txn", id="x3", label="fraud", by="ana", at=T0 + 100)

    def frauds(kind: str, id: str) -> object:
        return store.neighbourhood(kind, id, hops=1).nodes[0].props["fraud_txn_n"]

    assert (frauds("user", "q1"), frauds("user", "p1")) == (2, 1)
    assert edge(store, "q1", "merchant", "q1")["fraud_n"] == 2  # its receipts, and x3 itself
    assert frauds("merchant", "q1") == 2  # once per transaction
    store.unlabel(kind="txn", id="x1", by="ana", at=T0 + 200)
    assert frauds("user", "q1") == 1


def test_ingest_many_counts_each_transaction_once(store: CypherStore) -> None:
    """The bulk path writes optimistically; overlapping batches go through the guard."""
    first = [txn(i, f"u{i % 3}", card=f"c{i % 3}", merchant="m1", amount=1) for i in range(10)]
    overlap = [*first[5:], *[txn(i, "u9", card="c9", amount=1) for i in range(10, 14)]]
    res = store.ingest_many([first, overlap, first, [first[0], first[0]]])
    assert (res.received, res.ingested, res.duplicates) == (31, 14, 17)
    assert count(store, "Txn") == 14
    assert edge(store, "u0", "card", "c0")["n"] == 4  # txns 0, 3, 6, 9, once each
    assert edge(store, "u9", "card", "c9")["amount_sum"] == 4.0


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (txn("t9", "u9", card=""), "card_id", "must not be empty"),
        (txn("t9", "u9", device="d" * 129), "device_id", "at most 128"),
        (txn("", "u9"), "txn_id", "must not be empty"),
        (txn("t9", "u\x009"), "user_id", "printable characters only"),
        (txn("t9", "u9", device="d\x01"), "device_id", "printable characters only"),
        (txn("t9", "u-1 "), "user_id", "whitespace"),
        (txn("t9", " u-1"), "user_id", "whitespace"),
        (txn("t9", "u9", merchant="m\u200b"), "merchant_id", "printable characters only"),
        (txn("t9", "u9", card="4111.1111.1111.1111"), "card_id", "card number"),
        (txn("4111111111111111", "u9"), "txn_id", "card number"),
        (TxnRecord("t9", T0, None, None, None, None, None, 1.0), "user_id", "required"),  # type: ignore[arg-type]
    ],
)
def test_bad_ids_reject_the_whole_batch(
    store: CypherStore, record: TxnRecord, field: str, reason: str
) -> None:
    store.ingest([txn(1, "u1", card="c1")])
    before = count(store)
    with pytest.raises(InvalidGraphId) as info:
        store.ingest([txn(2, "u2", card="c2"), record])
    assert info.value.status_code == 422
    assert field in info.value.message
    assert reason in info.value.message
    [error] = info.value.to_dict()["detail"]["errors"]  # the API's 422 shape
    assert error["field"] == field and reason in error["reason"]
    assert count(store) == before
    assert store.ingest([txn("x" * 128, "u" * 128, card="c1")]).ingested == 1


def test_lookups_refuse_ids_the_store_cannot_take(store: CypherStore) -> None:
    """A NUL ends FalkorDB's query text, and a \x01 under a unique constraint crashes the
    server: both refused as a bad id (422) before any query is sent."""
    store.ingest([txn(1, "u1", card="c1")])
    for lookup in (
        lambda: store.ring("ring-\x00"),
        lambda: store.neighbourhood("device", "d\x01"),
        lambda: store.neighbourhood("user", "u\x00"),
        lambda: store.path(
            src=EntityRef(kind="user", id="u1"), dst=EntityRef(kind="user", id="\x00")
        ),
    ):
        with pytest.raises(InvalidGraphId, match="printable characters only") as info:
            lookup()
        [error] = info.value.detail["errors"]
        assert error["reason"].startswith("must contain printable characters only")


# --- labels -----------------------------------------------------------------------------------


def test_labels_move_edge_and_node_counts(store: CypherStore) -> None:
    store.ingest(
        [
            txn(1, "u1", card="c1", device="d1", ip="ip1", merchant="m1"),
            txn(2, "u1", card="c1", device="d1", ip="ip1", merchant="m1"),
        ]
    )
    res = store.label(kind="txn", id="1", label="fraud", by="ana", at=T0)
    assert res.changed and res.edges_updated == 4
    assert edge(store, "u1", "card", "c1")["fraud_n"] == 1
    assert not store.label(kind="txn", id="1", label="fraud", by="bob", at=T0 + 1).changed
    assert edge(store, "u1", "device", "d1")["fraud_n"] == 1
    store.label(kind="txn", id="2", label="fraud", by="ana", at=T0)
    assert edge(store, "u1", "ip", "ip1")["fraud_n"] == 2
    store.label(kind="txn", id="1", label="legitimate", by="ana", at=T0 + 2)
    assert edge(store, "u1", "merchant", "m1")["fraud_n"] == 1
    props = store.neighbourhood("user", "u1", hops=1).nodes[0].props
    assert (props["fraud_txn_n"], props["legit_txn_n"]) == (1, 1)
    store.label(kind="device", id="d1", label="fraud", by="ana", at=T0)
    dev = [n for n in store.neighbourhood("user", "u1", hops=1).nodes if n.kind == "device"]
    assert dev[0].props["fraud_label"] == "fraud"
    # a labelled start node: every property set, as stored; following no entity kind: alone
    start = store.neighbourhood("device", "d1", hops=2).nodes[0]
    assert start.props == {
        "id": "d1",
        "fraud_label": "fraud",
        "labelled_by": "ana",
        "labelled_at": T0,
        "fraud_txn_n": 1,
        "legit_txn_n": 1,
    }
    alone = store.neighbourhood("user", "u1", hops=2, follow=[])
    assert [(n.kind, n.id) for n in alone.nodes] == [("user", "u1")] and alone.edges == []
    with pytest.raises(GraphNotFound):
        store.label(kind="txn", id="nope", label="fraud", by="ana", at=T0)


def test_txn_users_names_the_users_a_txn_label_moves(store: CypherStore) -> None:
    store.ingest([txn("t1", "u7", card="c1"), txn("t2", "u8", device="d1")])
    assert (store.txn_users("t1"), store.txn_users("t2")) == ({"u7"}, {"u8"})
    assert store.txn_users("nope") == set()
    with pytest.raises(InvalidGraphId):
        store.txn_users("t\x00")


# --- rings ------------------------------------------------------------------------------------


def world(store: CypherStore) -> None:
    """Ring A (a1-a3 share device dA), ring B (b1-b6 share card cB: more hands than a household
    and a thief); all 33 users share a NAT IP; 24 users also shop at one big merchant; a1 and b1
    once used a shared device long ago."""
    recs: list[TxnRecord] = []
    i = 0
    for u in ("a1", "a2", "a3"):
        recs.append(txn(i := i + 1, u, device="dA", ip="nat", merchant="big", ts=T0))
    for u in ("b1", "b2", "b3", "b4", "b5", "b6"):
        recs.append(txn(i := i + 1, u, card="cB", ip="nat", merchant="big", ts=T0 + 10))
    for k in range(24):
        recs.append(txn(i := i + 1, f"x{k}", ip="nat", merchant="big", card=f"cx{k}", ts=T0))
    recs.append(txn(i := i + 1, "a1", device="old", ts=T0 - 40 * DAY))
    recs.append(txn(i := i + 1, "b1", device="old", ts=T0 - 40 * DAY))
    store.ingest(recs)


def test_hub_ip_and_old_links_do_not_merge_rings(store: CypherStore) -> None:
    world(store)
    up = store.detect_rings()
    assert sorted(r.members for r in up.rings) == [
        ["a1", "a2", "a3"],
        [f"b{k}" for k in range(1, 7)],
    ]
    a = next(r for r in up.rings if "a1" in r.members)
    assert [(e.kind, e.id) for e in a.shared_entities] == [("device", "dA")]
    assert a.density == 1.0 and a.size == 3 and 0 <= a.risk <= 1
    # a window wide enough to see the old shared device merges them (into a group bigger than
    # a household, which the default `household_max` would cut back to ring B's card)
    wide = store.detect_rings(params=RingParams(window_days=60, household_max=10))
    assert [r.size for r in wide.rings] == [9]
    # a hub cap above the NAT's 33 users merges everyone (once one visit ties a user to an IP)
    loose = RingParams(hub_cap=40, ip_min_txns=1, ip_share=0)
    assert [r.size for r in store.detect_rings(params=loose).rings] == [33]


def test_the_stores_ring_window_is_the_deployments(falkor_url: str, graph_name: str) -> None:
    """FRAUDRING_RING_WINDOW_DAYS reaches the served rule: a store opened with 60 days sees the
    device shared 40 days ago, as the rule given that window does."""
    settings = load_settings(env="test", api_keys={}, ring_window_days=60)
    with open_store(falkor_url, settings=settings, graph_name=graph_name) as s:
        assert isinstance(s, CypherStore)
        s.ensure_schema()
        world(s)
        members = sorted(r.members for r in s.detect_rings().rings)
        assert members == sorted(
            r.members for r in s.detect_rings(params=RingParams(window_days=60)).rings
        )
        assert members != sorted(r.members for r in s.detect_rings(params=RingParams()).rings)


def test_ring_ids_stable_when_a_ring_grows(store: CypherStore) -> None:
    world(store)
    store.detect_rings()
    first = ring_sets(store)
    store.ingest([txn("g1", "a4", device="dA", ts=T0 + 100), txn("g2", "z1", device="dz")])
    store.ingest([txn("g3", "z2", device="dz")])
    store.detect_rings()
    second = ring_sets(store)
    a_id = next(k for k, v in first.items() if "a1" in v)
    assert second[a_id] == {"a1", "a2", "a3", "a4"}
    assert len(second) == 3 and set(first) < set(second)
    assert {r.id: frozenset(r.members) for r in store.all_rings()} == second
    assert {r.id for r in store.all_rings(min_size=3)} == {
        k for k, v in second.items() if len(v) >= 3
    }
    # labelled fraud counts reach the ring
    store.label(kind="user", id="a2", label="fraud", by="ana", at=T0)
    ring = next(r for r in store.detect_rings().rings if r.id == a_id)
    assert (ring.fraud_n, ring.fraud_rate) == (1, 0.25)
    assert store.ring(a_id).fraud_n == 1
    assert store.top_rings(1)[0].id == a_id
    with pytest.raises(GraphNotFound):
        store.ring("ring-nope")


def test_incremental_matches_full(store: CypherStore) -> None:
    world(store)
    store.detect_rings()
    # grow ring A, bridge ring B to a newcomer, create ring C, and leave the rest alone
    batch = [
        txn("n1", "a4", device="dA", ts=T0 + 100),
        txn("n2", "y1", card="cB", ts=T0 + 100),
        txn("n3", "c1", device="dC", ts=T0 + 100),
        txn("n4", "c2", device="dC", ts=T0 + 100),
    ]
    store.ingest(batch)
    inc = store.detect_rings(touched_users={r.user_id for r in batch})
    assert inc.examined_users < 30
    after_inc = ring_sets(store)
    full = store.detect_rings()
    assert ring_sets(store) == after_inc
    assert full.created == [] and full.removed == []
    assert {frozenset(r.members) for r in inc.rings} == set(after_inc.values())


# --- investigator queries ---------------------------------------------------------------------


def test_neighbourhood_caps_filters_and_path(store: CypherStore) -> None:
    world(store)
    nb = store.neighbourhood("user", "a1", hops=2)
    kinds = {n.kind for n in nb.nodes}
    assert {"device", "ip", "merchant", "user"} <= kinds
    only = store.neighbourhood("user", "a1", hops=2, follow=["device"])
    assert {(n.kind, n.id) for n in only.nodes} == {
        ("user", "a1"),
        ("device", "dA"),
        ("device", "old"),
        ("user", "a2"),
        ("user", "a3"),
        ("user", "b1"),
    }
    # edges reached from an entity (the second hop) carry the same values as the first hop's
    store.ingest([txn("cents", "a2", device="dA", amount=12.345, ts=T0 + 0.75)])
    far = {(e.user_id, e.entity_id): e for e in only.edges}
    again = store.neighbourhood("user", "a1", hops=2, follow=["device"])
    e = next(e for e in again.edges if (e.user_id, e.entity_id) == ("a2", "dA"))
    before = far[("a2", "dA")]
    assert e.n == before.n + 1 and e.amount_sum == pytest.approx(before.amount_sum + 12.35)
    assert e.first_seen == min(before.first_seen, T0) and isinstance(e.last_seen, float)
    capped = store.neighbourhood("ip", "nat", hops=2, max_nodes=5)
    assert len(capped.nodes) == 5 and capped.truncated
    p = store.path(src=EntityRef(kind="device", id="dA"), dst=EntityRef(kind="card", id="cB"))
    assert p.length == 4 and p.nodes[0].id == "dA" and p.nodes[-1].id == "cB"
    store.ingest([txn("lone", "hermit", card="alone")])
    none = store.path(src=EntityRef(kind="user", id="a1"), dst=EntityRef(kind="card", id="alone"))
    assert none.nodes == [] and none.length == 0
    with pytest.raises(GraphNotFound):
        store.neighbourhood("card", "missing")


def test_path_between_ring_members_avoids_hubs_and_merchants(store: CypherStore) -> None:
    """r1 and r2 are tied through r3's devices (4 hops) and both shop at a big shop and sit
    behind a carrier NAT (2 hops each): the path names the devices; a pair tied by a small
    shop only goes through it; a pair tied only by the big shop gets it, flagged."""
    recs = [
        txn(1, "r1", device="dR", merchant="bigshop", ip="nat", card="c1"),
        txn(2, "r3", device="dR", card="c3"),
        txn(3, "r3", device="dS", card="c3"),
        txn(4, "r2", device="dS", merchant="bigshop", ip="nat", card="c2"),
        txn(5, "s1", merchant="bigshop", card="cs1"),
        txn(6, "s2", merchant="bigshop", card="cs2"),
    ]
    recs += [txn(100 + k, f"n{k}", ip="nat", card=f"cn{k}") for k in range(25)]
    recs += [txn(200 + k, f"b{k}", merchant="bigshop", card=f"cb{k}") for k in range(60)]
    recs += [txn(300 + k, f"t{k}", merchant="shell", card=f"ct{k}") for k in range(3)]
    store.ingest(recs)
    p = store.path(src=EntityRef(kind="user", id="r1"), dst=EntityRef(kind="user", id="r2"))
    assert [(n.kind, n.id) for n in p.nodes] == [
        ("user", "r1"),
        ("device", "dR"),
        ("user", "r3"),
        ("device", "dS"),
        ("user", "r2"),
    ]
    assert p.length == 4 and not p.through_hubs
    only = store.path(src=EntityRef(kind="user", id="s1"), dst=EntityRef(kind="user", id="s2"))
    assert [n.id for n in only.nodes] == ["s1", "bigshop", "s2"]
    assert only.through_hubs and "hub" in only.note
    shell = store.path(src=EntityRef(kind="user", id="t0"), dst=EntityRef(kind="user", id="t2"))
    assert [n.id for n in shell.nodes] == ["t0", "shell", "t2"]
    assert not shell.through_hubs and "merchant" in shell.note
    # an end may be a merchant itself
    shop = store.path(
        src=EntityRef(kind="user", id="r1"), dst=EntityRef(kind="merchant", id="bigshop")
    )
    assert [n.id for n in shop.nodes] == ["r1", "bigshop"] and not shop.through_hubs
    gone = store.path(src=EntityRef(kind="user", id="r1"), dst=EntityRef(kind="user", id="zz"))
    assert gone.nodes == [] and "not in the graph" in gone.note


# --- export -----------------------------------------------------------------------------------


def test_export_shapes_and_mapping(store: CypherStore) -> None:
    world(store)
    store.label(kind="user", id="a1", label="fraud", by="ana", at=T0)
    store.label(kind="user", id="x0", label="legitimate", by="ana", at=T0)
    ex = store.export(chunk_size=7)
    users, entities = 33, 1 + 1 + 24 + 1 + 1 + 1  # dA, cB, cx*, nat, big, old
    assert ex.num_nodes == users + entities
    edges = 3 * 3 + 6 * 3 + 24 * 3 + 2  # ring A, ring B, the others, the old device
    assert ex.edge_index.shape == (2, 2 * edges) and ex.edge_index.dtype.name == "int64"
    assert ex.x.shape == (ex.num_nodes, len(ex.feature_names))
    assert ex.edge_attr.shape == (2 * edges, 3)
    i = ex.index[("user", "a1")]
    assert ex.ids[i] == "a1" and ex.y[i] == 1 and ex.x[i, 0] == 1
    assert ex.y[ex.index[("user", "x0")]] == 0 and ex.y[ex.index[("user", "a2")]] == -1
    nat = ex.index[("ip", "nat")]
    assert ex.x[nat, 3] == 1
    assert ex.x[nat, 5] == pytest.approx(math.log1p(33))
    src, dst = ex.edge_index
    users_of_nat = {ex.ids[j] for j in dst[src == nat].tolist()}
    ring_b = {f"b{k}" for k in range(1, 7)}
    assert users_of_nat == {"a1", "a2", "a3"} | ring_b | {f"x{k}" for k in range(24)}


# --- injection --------------------------------------------------------------------------------

NASTY = [
    'quote"d',
    "it's",
    "}) DETACH DELETE n //",
    "'}) MATCH (n) DETACH DELETE n //",
    '"}) MATCH (n) DETACH DELETE n RETURN 1 //',
    "back\\slash\\",
    "{brace}",
    "$param",
    "`tick`",
]


def test_cypher_injection_in_ids_is_plain_text(store: CypherStore) -> None:
    store.ingest([txn("keep", "keeper", card="keep-card")])
    before = count(store)
    recs = [
        txn(f"t-{s}", s, card=s, device=s, ip=s, merchant=s, ts=T0 + k) for k, s in enumerate(NASTY)
    ]
    assert store.ingest(recs).ingested == len(NASTY)
    assert count(store) == before + 6 * len(NASTY)  # user, 4 entities, txn each
    assert store.neighbourhood("user", "keeper", hops=1).nodes[1].id == "keep-card"
    for s in NASTY:
        nb = store.neighbourhood("user", s, hops=1)
        assert {(n.kind, n.id) for n in nb.nodes} == {
            ("user", s),
            ("card", s),
            ("device", s),
            ("ip", s),
            ("merchant", s),
        }
        assert store.label(kind="card", id=s, label="fraud", by=s, at=T0).changed
        assert store.label(kind="txn", id=f"t-{s}", label="fraud", by=s, at=T0).edges_updated == 4
    assert count(store) == before + 6 * len(NASTY)
    assert store.detect_rings().rings == []


def background(n: int = 500) -> list[TxnRecord]:
    """Ordinary users, each on its own card, phone and home IP: the population an entity's
    labelled sharing is compared with."""
    return [
        txn(f"bg{k}", f"user{k}", card=f"bc{k}", device=f"bd{k}", ip=f"bi{k}", ts=T0)
        for k in range(n)
    ]


def test_households_are_cut_from_rings_and_size_alone_is_not_suspicious(
    store: CypherStore,
) -> None:
    recs = [txn(f"r{k}", f"m{k}", device="ring-dev", ts=T0) for k in range(6)]
    # m0's family hangs on through their home IP; a separate family of three shares a card
    # (and their home IP: one home)
    recs += [txn(f"h{k}", u, ip="home", ts=T0) for k, u in enumerate(("m0", "f1", "f2"))]
    recs += [txn(f"g{k}", u, card="family-card", ts=T0) for k, u in enumerate(("g1", "g2", "g3"))]
    recs += [txn(f"gh{u}{j}", u, ip="g-home", ts=T0) for u in ("g1", "g2", "g3") for j in (1, 2)]
    # two users on one card (a couple, or a thief and the victim) link nobody
    recs += [txn("c1", "p1", card="pair"), txn("c2", "p2", card="pair")]
    store.ingest(recs + background())
    rings = {frozenset(r.members): r for r in store.detect_rings().rings}
    crew = frozenset(f"m{k}" for k in range(6))
    assert set(rings) == {crew, frozenset({"g1", "g2", "g3"})}
    assert not any(r.suspicious for r in rings.values())  # no label: six on a phone is a dorm
    # one (perhaps mistaken) label flags nobody: a ring needs two labelled members
    store.label(kind="txn", id="g1", label="fraud", by="ana", at=T0)
    assert not any(r.suspicious for r in store.detect_rings(touched_users=["g1"]).rings)
    # four of the six labelled: the phone ties the other two in, not m0's family
    for k in range(4):
        store.label(kind="txn", id=f"r{k}", label="fraud", by="ana", at=T0)
    flagged = [r for r in store.detect_rings().rings if r.suspicious]
    assert [frozenset(r.members) for r in flagged] == [crew]
    assert flagged[0].fraud_n == 4


def test_labelled_relay_is_one_ring_without_the_families(store: CypherStore) -> None:
    """A relay: each device shared by two consecutive members (a household's worth), the
    members labelled but one; each member's family hangs on through its home IP. The labelled
    pairs are unusual for devices, the families' IPs tie one labelled user each."""
    recs: list[TxnRecord] = []
    members = [f"v{k}" for k in range(6)]
    for k, u in enumerate(members):
        recs += [txn(f"{u}-h{j}", x, ip=f"home{k}", ts=T0 + j) for j, x in enumerate((u, f"f{k}"))]
        if k + 1 < len(members):
            recs += [
                txn(f"{u}-d", u, device=f"relay{k}"),
                txn(f"{u}-e", members[k + 1], device=f"relay{k}"),
            ]
    store.ingest(recs + background())
    assert not any(r.suspicious for r in store.detect_rings().rings)
    for u in members:
        if u != "v3":
            store.label(kind="user", id=u, label="fraud", by="ana", at=T0)
    relay = RingParams(join_alpha=0.01)  # propagation on (the default keeps it nearly off)
    inc = store.detect_rings(touched_users=["v0"], params=relay)
    flagged = {frozenset(r.members) for r in inc.rings if r.suspicious}
    assert flagged == {frozenset(members)}  # v3 joins through two relay devices
    full = store.detect_rings(params=relay)
    assert {frozenset(r.members) for r in full.rings if r.suspicious} == flagged
    assert full.created == [] and full.removed == []
    strict = RingParams(evidence_alpha=1e-9, join_alpha=1e-9)
    assert not any(r.suspicious for r in store.detect_rings(params=strict).rings)
    # every member labelled, and a threshold no single pair meets: the chain of pairs does
    store.label(kind="user", id="v3", label="fraud", by="ana", at=T0)
    store.detect_rings()
    pair = evidence(2, 2, stored_rates(store, params=relay)["device"])
    chain = RingParams(evidence_alpha=pair / 2)
    inc = store.detect_rings(touched_users=["v5"], params=chain)
    assert {frozenset(r.members) for r in inc.rings if r.suspicious} == {frozenset(members)}
    full = store.detect_rings(params=chain)
    assert {frozenset(r.members) for r in full.rings if r.suspicious} == {frozenset(members)}


def test_merchant_links_only_repeat_customers_of_a_shell(store: CypherStore) -> None:
    recs = []
    for k in range(4):  # a shell merchant living off four repeat customers
        recs += [
            txn(f"s{k}a", f"mule{k}", merchant="shell"),
            txn(f"s{k}b", f"mule{k}", merchant="shell"),
        ]
    recs.append(txn("once", "passer-by", merchant="shell"))
    for k in range(10):  # a corner shop: ten one-off customers, one regular
        recs.append(txn(f"c{k}", f"walk{k}", merchant="corner"))
    recs += [txn("reg1", "walk0", merchant="corner", ts=T0 + 1)]
    store.ingest(recs)
    rings = store.detect_rings().rings
    assert [r.members for r in rings] == [[f"mule{k}" for k in range(4)]]
    assert [(e.kind, e.id) for e in rings[0].shared_entities] == [("merchant", "shell")]
    assert store.detect_rings(params=RingParams(merchant_cap=0)).rings == []


def test_regulars_chained_shop_to_shop_are_no_ring_but_a_crew_among_them_is(
    store: CypherStore,
) -> None:
    """Thirteen neighbours, each a regular at two small shops: merchant links chain them into
    one component. Above `max_size` it is split without its merchant links: only the three who
    also share a phone remain a ring, in a full and an incremental run alike."""
    recs = [
        txn(f"s{k}-{u}-{j}", f"n{u}", merchant=f"shop{k}", ts=T0 + j)
        for k in range(12)
        for u in (k, k + 1)
        for j in range(2)
    ]
    recs += [txn(f"crew{u}", f"n{u}", device="crew-phone", ts=T0 + 5) for u in (3, 4, 5)]
    store.ingest(recs)
    assert [r.size for r in store.detect_rings().rings] == [13]
    small = RingParams(max_size=10)
    crew = [["n3", "n4", "n5"]]
    assert [r.members for r in store.detect_rings(params=small).rings] == crew
    assert [r.members for r in store.detect_rings(touched_users=["n0"], params=small).rings] == crew
    assert [r.size for r in store.detect_rings(params=RingParams(max_size=13)).rings] == [13]


def test_ip_ties_only_users_based_there(store: CypherStore) -> None:
    recs: list[TxnRecord] = []
    for k in range(6):  # colleagues: one office IP, but most of their life elsewhere
        recs += [txn(f"o{k}-{j}", f"col{k}", merchant=f"shop{k}-{j}") for j in range(8)]
        recs += [txn(f"o{k}-ip{j}", f"col{k}", ip="office") for j in range(2)]
    for k in range(4):  # a hideout: three of each member's four transactions from one IP
        recs += [txn(f"h{k}-{j}", f"hid{k}", ip="hideout") for j in range(3)]
        recs.append(txn(f"h{k}-x", f"hid{k}", merchant="elsewhere"))
    store.ingest(recs)
    rings = store.detect_rings().rings
    assert [r.members for r in rings] == [[f"hid{k}" for k in range(4)]]
    inc = store.detect_rings(touched_users=["col0", "hid0"])
    assert [r.members for r in inc.rings] == [[f"hid{k}" for k in range(4)]]


def test_ledger_since_reads_each_transaction_once_with_its_label(store: CypherStore) -> None:
    """Read in time slices at once: rows on a slice's edge, the newest and the oldest come back
    exactly once, with exact times, amounts and labels; nothing before ``since``."""
    # four slices of [T0, T0 + 1000]: cut at +250, +500 and +750; the oldest time has more
    # digits than the server prints (its min comes back rounded up)
    first = T0 + 0.1234567
    times = [first, T0 + 0.5, T0 + 250.0, T0 + 500.0, T0 + 500.0, T0 + 750.0, T0 + 1_000.0]
    recs = [txn(f"t{k}", f"u{k % 3}", merchant="m", ts=ts, amount=k + 0.25) for k, ts in
            enumerate(times)]  # fmt: skip
    recs.append(txn("old", "u0", merchant="m", ts=T0 - DAY))
    store.ingest(recs)
    store.label(kind="txn", id="t2", label="fraud", by="ana", at=T0 + 2_000.5)
    got = store.ledger_since(since=first).sort("txn_id")
    assert got["txn_id"].to_list() == [f"t{k}" for k in range(len(times))]
    assert got["ts"].to_list() == pytest.approx(times, abs=1e-4)
    assert got["amount"].to_list() == [k + 0.25 for k in range(len(times))]
    assert got["merchant_id"].to_list() == ["m"] * len(times)
    fraud = got.filter(got["label"].is_not_null())
    assert fraud["txn_id"].to_list() == ["t2"] and fraud["label"].to_list() == ["fraud"]
    assert fraud["labelled_at"].to_list() == pytest.approx([T0 + 2_000.5])
    assert store.ledger_since(since=T0 + 2_000).height == 0
    assert store.ledger_since(since=T0 - 2 * DAY).height == len(times) + 1


def test_ledger_slices_of_one_row_or_none_keep_their_nulls(store: CypherStore) -> None:
    """Slices [T0, +250), [+250, +500) (empty), [+500, +750) and [+750, +1001): a slice of one
    row whose label is null reads as that row with a null label, not as no row."""
    store.ingest([txn(f"s{k}", "u1", merchant="m", ts=T0 + 500.0 * k) for k in range(3)])
    got = store.ledger_since(since=T0).sort("txn_id")
    assert got["txn_id"].to_list() == ["s0", "s1", "s2"]
    assert got["label"].to_list() == [None, None, None]
    assert got["labelled_at"].to_list() == [None, None, None]
    assert got["ts"].to_list() == pytest.approx([T0, T0 + 500.0, T0 + 1000.0], abs=1e-4)


def test_ledger_read_in_more_slices_than_threads_reads_each_row_once(
    store: CypherStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice holds about LEDGER_SLICE_ROWS rows: with one, nine rows are read in nine
    slices (some empty, some of two), `read_parallelism` at a time, each row once."""
    from graph import repository

    store.ingest([txn(f"n{k}", f"u{k % 2}", merchant="m", ts=T0 + k * k) for k in range(9)])
    expected = store.ledger_since(since=T0).sort("txn_id")
    monkeypatch.setattr(repository, "LEDGER_SLICE_ROWS", 1)
    got = store.ledger_since(since=T0).sort("txn_id")
    assert got.equals(expected) and got["txn_id"].to_list() == [f"n{k}" for k in range(9)]


@pytest.mark.parametrize("store", ["falkordb"], indirect=True)
def test_falkordb_ledger_falls_back_to_rows_when_a_value_holds_the_separator(
    store: CypherStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The joined-column read splits on a character no id holds; were one to hold it, the
    columns would split unevenly and the slice is read row by row instead."""
    from graph import falkor

    store.ingest([txn(f"s{k}", f"u{k}", merchant="m", ts=T0 + k) for k in range(3)])
    expected = store.ledger_since(since=T0).sort("txn_id")
    monkeypatch.setattr(falkor, "_SEP", "u")  # inside every user id
    assert store.ledger_since(since=T0).sort("txn_id").equals(expected)


@pytest.mark.parametrize("store", ["falkordb"], indirect=True)  # Neo4j: one shared database
def test_drop_empties_only_this_graph(store: CypherStore) -> None:
    from graph.falkor import FalkorStore

    assert isinstance(store, FalkorStore)
    other = FalkorStore(store.url, graph_name=store.graph_name + "_other")
    other.ingest([txn(1, "keep")])
    store.ingest([txn(1, "u1", card="c1")])
    assert not store.is_empty()
    store.drop()
    store.drop()  # a graph that is already gone
    assert store.is_empty() and not other.is_empty()
    other.drop()


def test_schema_is_not_built_over_ids_that_crash_falkordb(falkor_url: str, graph_name: str) -> None:
    """A graph written before ids were checked may hold 'u-1 ': FalkorDB 4.16 crashes creating
    the unique constraint over it, so that label goes without one (logged) and the rest get
    theirs."""
    settings = load_settings(env="test", api_keys={})
    with open_store(falkor_url, settings=settings, graph_name=graph_name) as s:
        assert isinstance(s, CypherStore)
        s._write("CREATE (:User {id: 'u-1 '}), (:User {id: 'ok'}), (:Card {id: 'c1'})")
        s.ensure_schema()
        s.ensure_schema()
        labels = {row[1] for row in s._read("CALL db.constraints()")}
        assert "Card" in labels and "Txn" in labels and "User" not in labels
        assert s.is_empty() is False  # the server is alive


def test_neo4j_rings_from_gds_and_without_it(
    neo4j_clean: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Components by GDS WCC in the database give the rings the Python path gives; a server
    that refuses the procedures falls back to the Python path."""
    from graph import gds
    from graph.neo4j_store import Neo4jStore
    from tests.conftest import neo4j_settings

    with open_store(neo4j_clean["NEO4J_URI"], settings=neo4j_settings(neo4j_clean)) as s:
        assert isinstance(s, Neo4jStore)
        s.ensure_schema()
        world(s)
        assert not s.in_db_components(), "off unless the setting graph_gds asks for it"
        s.use_gds = True
        assert s.in_db_components(), "the test server carries Graph Data Science"
        rules = {"device": {"min_deg": 2, "cap": 30}, "card": {"min_deg": 2, "cap": 30}}
        labels = gds.components(s, since=T0 - DAY, rules=rules)
        assert labels is not None and labels["a1"] == labels["a3"] != labels["b1"]
        want = [["a1", "a2", "a3"], [f"b{k}" for k in range(1, 7)]]
        assert sorted(r.members for r in s.detect_rings().rings) == want
        monkeypatch.setattr(gds, "WCC", "CALL gds.no_such_procedure($graph)")
        assert gds.components(s, since=T0 - DAY, rules=rules) is None
        assert sorted(r.members for r in s.detect_rings().rings) == want
