"""Offline ring risk equals what the workers serve: the same tiny graph, both ways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudring.settings import load_settings
from gnn.features import US
from gnn.graphdata import KINDS, txn_arrays
from gnn.pit import PitConfig, graph_risk_features
from gnn.ringrisk import RingIndex, ring_risk, user_bases
from graph.repository import CypherStore
from graph.ringrule import pick_bases
from graph.rings import _bases
from graph.schemas import RingParams, TxnRecord
from graph.service import open_store
from workers.scoring import plan_risks

DAY = 86_400.0
T0 = 1_750_000_000.0
# (user, card, device, ip, merchant, days after T0)
ROWS = [
    # a chain of five accounts over two devices (each shared by three: household-sized)
    *[(f"a{i}", f"ca{i}", "dA1", f"ia{i}", "m1", 1.0 + i / 10) for i in (1, 2, 3)],
    *[(f"a{i}", f"ca{i}", "dA2", f"ia{i}", "m2", 2.0 + i / 10) for i in (3, 4, 5)],
    # a household: two users on one tablet
    ("h1", "ch1", "dH", "iH", "m1", 3.0),
    ("h2", "ch2", "dH", "iH", "m2", 3.1),
    # a couple on one card: two users do not make a card link (card_min_users = 3)
    ("p1", "cP", "dp1", "ip1", "m1", 3.2),
    ("p2", "cP", "dp2", "ip2", "m1", 3.3),
    # one visit to the ring's IP is not being based there (ip_min_txns = 2)
    ("x1", "cx1", "dx1", "ia1", "m2", 3.4),
    # a device shared 40 days before the end: outside the 30-day window
    ("o1", "co1", "dOld", "io1", "m1", -30.0),
    ("o2", "co2", "dOld", "io2", "m1", -29.9),
    ("o1", "co1", "do1", "io1", "m1", 9.0),
    # a shell merchant living off three repeat customers
    *[(f"s{i}", f"cs{i}", f"ds{i}", f"is{i}", "mShell", 4.0 + i / 10 + k) for i in (1, 2, 3) for k in (0, 1)],
    ("a1", "ca1", "dA1", "ia1", "m1", 5.0),
    ("a1", "ca1", "dA1", "ia1", "m1", 10.0),
]  # fmt: skip
LABEL_AT = T0 + 8 * DAY


def frames(
    labelled: tuple[str, ...] = ("a2",), rows: list[tuple[Any, ...]] = ROWS, *, every: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = ["user_id", "card_id", "device_id", "ip", "merchant_id", "d", "payee_user_id"]
    df = pd.DataFrame([(*r, None)[:7] for r in rows], columns=columns)
    df["merchant_id"] = df["merchant_id"].fillna(df["payee_user_id"])  # as `fraudring load`
    df["ts"] = pd.to_datetime(T0 + df.pop("d") * DAY, unit="s", utc=True)
    df = df.sort_values("ts", kind="mergesort").reset_index(drop=True)
    df["txn_id"] = [f"t{i:03d}" for i in range(len(df))]
    df["amount"] = 10.0
    # labelled fraud on day 8: the first transaction of each labelled user (`every`: all)
    fraud = [
        t for u in labelled for t in df.loc[df["user_id"] == u, "txn_id"][: None if every else 1]
    ]
    at = pd.Timestamp(LABEL_AT, unit="s", tz="UTC")
    labels = pd.DataFrame(
        {"txn_id": fraud, "label": [np.int8(1)] * len(fraud), "label_ts": [at] * len(fraud)}
    )
    return df, labels


@pytest.fixture
def store(falkor_url: str, graph_name: str) -> Iterator[CypherStore]:
    settings = load_settings(env="test", api_keys={})
    with open_store(falkor_url, settings=settings, graph_name=graph_name) as s:
        assert isinstance(s, CypherStore)
        s.ensure_schema()
        yield s


def served_and_offline(
    store: CypherStore,
    params: RingParams,
    labelled: tuple[str, ...] = ("a2",),
    rows: list[tuple[Any, ...]] = ROWS,
    *,
    every: bool = False,
) -> dict[tuple[str, str], Any]:
    """Each entity's (score, ring size, fraud rate) from the workers' ring pass on the store,
    after checking that the offline `ring_risk` at the newest transaction gives the same."""
    txns, labels = frames(labelled, rows, every=every)
    store.ingest(
        [
            TxnRecord(r.txn_id, r.ts.timestamp(), r.user_id, r.card_id, r.device_id, r.ip,
                      r.merchant_id, r.amount, r.payee_user_id)
            for r in txns.itertuples()
        ]
    )  # fmt: skip
    for tid in labels["txn_id"]:
        store.label(kind="txn", id=tid, label="fraud", by="test", at=LABEL_AT)
    update = store.detect_rings(params=params)
    served = plan_risks(update.rings, {}, model_version=None, now=0.0).risks

    a = txn_arrays(txns, labels)
    newest = int(a.t[-1])
    rr = ring_risk(a, newest + 1, params=params)  # everything the store holds
    offline = {}
    for k, kind in enumerate(KINDS):
        for code, eid in enumerate(a.node_ids[k]):
            g = int(a.offsets[k]) + code
            if not np.isnan(rr.score[g]):
                offline[(kind, str(eid))] = (rr.score[g], rr.ring_size[g], rr.ring_fraud_rate[g])
    assert set(offline) == set(served)
    for key, risk in served.items():
        score, size, rate = offline[key]
        assert size == risk.ring_size and rate == pytest.approx(risk.ring_fraud_rate), key
        assert score == pytest.approx(risk.score, rel=1e-6), key
    return dict(served)


def test_offline_ring_risk_is_what_the_workers_serve(store: CypherStore) -> None:
    served = served_and_offline(store, RingParams())
    members = {k[1] for k in served if k[0] == "user"}
    assert {"a1", "a5", "h1", "s3"} <= members
    assert not members & {"p1", "x1", "o2"}  # the couple, the visitor, the stale link
    assert served[("user", "a4")].ring_fraud_rate == pytest.approx(1 / 5)


def test_offline_and_served_grow_the_same_rings_from_labels(store: CypherStore) -> None:
    """Labels on a1, a2 and s1, s2 (in so small a world only a loose `evidence_alpha` calls
    their sharing unusual): the suspicious rings, and the risk they give, agree offline."""
    loose = RingParams(evidence_alpha=0.5, join_alpha=0.5, join_share=0.6)
    served = served_and_offline(store, loose, labelled=("a1", "a2", "s1", "s2"))
    flagged = [r for r in store.all_rings() if r.suspicious]
    assert sorted(r.members for r in flagged) == [["a1", "a2", "a3"], ["s1", "s2", "s3"]]
    assert served[("user", "a1")].ring_fraud_rate == pytest.approx(2 / 3)


def test_a_crews_proxy_beyond_evidence_cap_still_ties_it_a_public_ip_does_not(
    store: CypherStore,
) -> None:
    """Five accounts on a proxy IP, four of them labelled, and five on a public IP, two of them
    labelled: with `evidence_cap` 4 both IPs are infrastructure by their size, but labels are
    most of the proxy's users, so it still ties its crew; both ways alike."""
    crew = [
        (f"c{i}", f"cc{i}", f"dc{i}", "iProxy", "m1", 4.0 + i / 10 + k)
        for i in range(1, 6)
        for k in (0, 1)
    ]
    public = [(f"g{i}", f"cg{i}", f"dg{i}", "iPub", "m2", 5.0 + i / 10) for i in range(1, 6)]
    params = RingParams(evidence_alpha=0.5, join_alpha=0.5, evidence_cap=4)
    labelled = ("c1", "c2", "c3", "c4", "g1", "g2")
    served = served_and_offline(store, params, labelled, rows=ROWS + crew + public)
    flagged = [r.members for r in store.all_rings() if r.suspicious]
    assert flagged == [["c1", "c2", "c3", "c4", "c5"]]
    assert served[("user", "c5")].ring_fraud_rate == pytest.approx(4 / 5)


def test_a_laundering_cycle_is_tied_through_its_payees_accounts_both_ways(
    store: CypherStore,
) -> None:
    """Three accounts passing money round twice (no card, device or IP): each payee is tied to
    the account node its payer pays, so the cycle is one group, served and offline alike.
    One-off transfers between two other accounts tie nobody."""
    cycle = [
        (u, None, None, None, None, 1.0 + k + i / 10, v)
        for k in (0, 1)
        for i, (u, v) in enumerate([("L1", "L2"), ("L2", "L3"), ("L3", "L1")])
    ]
    once = [("N1", None, None, None, None, 2.5, "N2"), ("N2", None, None, None, None, 9.0, "N3")]
    served = served_and_offline(
        store, RingParams(evidence_alpha=0.5), labelled=("L1",), rows=[*cycle, *once]
    )
    members = {k[1] for k in served if k[0] == "user"}
    assert members == {"L1", "L2", "L3"}
    # L1's labelled transfer labels its payee L2 too: the pair is flagged on labels, L3 is at
    # risk through the cycle's group
    assert (served[("merchant", "L2")].ring_size, served[("user", "L3")].ring_size) == (2, 3)
    [ring] = [r for r in store.all_rings() if r.suspicious]
    assert (ring.flagged_by, sorted(ring.members)) == ("labels", ["L1", "L2"])
    # The same transfers paid to the payees' accounts without naming the payees: no ring.
    txns, labels = frames(("L1",), [(*r[:4], r[6], r[5]) for r in [*cycle, *once]])
    assert txns["payee_user_id"].isna().all() and txns["merchant_id"].notna().all()
    a = txn_arrays(txns, labels)
    rr = ring_risk(a, int(a.t[-1]) + 1, params=RingParams(evidence_alpha=0.5))
    assert np.isnan(rr.score).all()


def test_a_fan_out_is_flagged_through_the_accounts_its_labelled_transfers_fed(
    store: CypherStore,
) -> None:
    """One account pays three others twice each (no card, device or IP), every transfer later
    labelled fraud: each payee counts as labelled too, so the fan-out is a ring of four flagged
    on labels, served and offline alike. Before, only the payer was labelled and such a pattern
    was never flagged (AMLSim's fan-in read backwards: 0 of 136 found)."""
    fan = [
        ("S", None, None, None, None, 1.0 + k + i / 10, m)
        for k in (0, 1)
        for i, m in enumerate(("M1", "M2", "M3"))
    ]
    rows = [*fan, ("N1", None, None, None, None, 9.0, "N2")]  # labels known by the end
    served = served_and_offline(store, RingParams(evidence_alpha=0.5), ("S",), rows, every=True)
    assert {k[1] for k in served if k[0] == "user"} == {"S", "M1", "M2", "M3"}
    [ring] = [r for r in store.all_rings() if r.suspicious]
    assert (ring.flagged_by, sorted(ring.members)) == ("labels", ["M1", "M2", "M3", "S"])


def test_offline_and_served_give_up_the_same_oversized_components(store: CypherStore) -> None:
    served = served_and_offline(store, RingParams(max_size=4))
    members = {k[1] for k in served if k[0] == "user"}
    assert {"h1", "s3"} <= members
    assert not members & {"a1", "a4"}  # the chain of five, tied by devices: above max_size


def test_ring_features_are_point_in_time() -> None:
    txns, labels = frames()
    a = txn_arrays(txns, labels)
    cfg = PitConfig(use_gcn=False)
    f = graph_risk_features(a, cfg=cfg, progress=False).features
    day = (a.t - int(T0 * US)) // int(DAY * US)
    a1 = (txns["user_id"] == "a1").to_numpy()
    # day 5: the chain (days 1-2) is a ring, its fraud label (day 8) not yet known
    (d5,) = np.flatnonzero(a1 & (day == 5))
    assert f.loc[d5, "ring_size"] == 5 and f.loc[d5, "ring_fraud_rate"] == 0
    # day 10: the label is known
    (d10,) = np.flatnonzero(a1 & (day == 10))
    assert f.loc[d10, "ring_fraud_rate"] == pytest.approx(0.2)
    assert f.loc[d10, "user_risk"] > f.loc[d5, "user_risk"]
    # the shell merchant's first customers: no ring before their second visits
    first_visit = (txns["merchant_id"] == "mShell").to_numpy() & (day == 4)
    assert f.loc[first_visit, "merchant_risk"].isna().all()
    assert np.isnan(f.loc[(txns["user_id"] == "p2").to_numpy(), "card_risk"]).all()


def test_pick_bases_most_transactions_then_smallest_id_in_any_order() -> None:
    rows = [("u1", "ip-b", 3), ("u1", "ip-a", 3), ("u1", "ip-c", 2), ("u2", "ip-z", 1)]
    assert pick_bases(rows) == pick_bases(rows[::-1]) == {"u1": "ip-a", "u2": "ip-z"}


def test_offline_homes_are_the_stores(store: CypherStore) -> None:
    """Each user's home IP, online (a query and `pick_bases`) and offline (`user_bases`): ties
    go to the smaller id, hub IPs (more than `hub_cap` recent users) and old edges do not count."""
    rows: list[tuple[str, str, float]] = []
    rows += [("t1", ip, 1.0 + k / 10) for k, ip in enumerate(["ip-b", "ip-b", "ip-a", "ip-a"])]
    rows += [(f"n{k}", "nat", 1.0) for k in range(5)]  # a hub at hub_cap = 4
    rows += [("h1", "nat", 1.0 + k / 10) for k in range(3)] + [("h1", "ip-h", 1.5)]
    rows += [("o1", "ip-old", -40.0), ("o1", "ip-old", -39.0), ("o1", "ip-new", 2.0)]
    df = pd.DataFrame(rows, columns=["user_id", "ip", "d"])
    df["ts"] = pd.to_datetime(T0 + df.pop("d") * DAY, unit="s", utc=True)
    df = df.sort_values("ts", kind="mergesort").reset_index(drop=True)
    df["txn_id"] = [f"b{i:03d}" for i in range(len(df))]
    for col in ("card_id", "device_id", "merchant_id"):
        df[col] = None
    df["amount"] = 1.0
    store.ingest(
        [
            TxnRecord(r.txn_id, r.ts.timestamp(), r.user_id, None, None, r.ip, None, r.amount)
            for r in df.itertuples()
        ]
    )
    users = sorted(set(df["user_id"]))
    since = T0 - 30 * DAY + 3 * DAY  # the window as of day 3
    online = _bases(store, users, since=since, cap=4)
    assert online == {"t1": "ip-a", "h1": "ip-h", "o1": "ip-new"}

    a = txn_arrays(df, None)
    index = RingIndex.of(a)
    name = {str(int(a.offsets[0]) + i): u for i, u in enumerate(a.node_ids[0])}
    ips = a.node_ids[KINDS.index("ip")]
    ip_name = {str(int(a.offsets[KINDS.index("ip")]) + i): ip for i, ip in enumerate(ips)}
    got = user_bases(a, len(a.t), since=int(since * US), cap=4, index=index, users=set(name))
    assert {name[u]: ip_name[ip] for u, ip in got.items()} == online


def test_a_card_three_users_share_joins_two_trios_only_from_three_users() -> None:
    """Two trios, each on its own phone, joined only by a card three of them use (the 1M bench
    world's crew of 8 was two such halves): one group with `card_min_users` 3, two at the
    default 6 (docs/rings.md says why 6)."""
    rows = [
        *[(f"a{i}", f"ca{i}", "dA", f"ia{i}", "m1", 1.0 + i / 10) for i in (1, 2, 3)],
        *[(f"b{i}", f"cb{i}", "dB", f"ib{i}", "m1", 2.0 + i / 10) for i in (1, 2, 3)],
        *[(u, "cX", f"dx{u}", f"ix{u}", "m2", 3.0 + k / 10) for k, u in enumerate(("a1", "b1", "b2"))],
    ]  # fmt: skip
    a = txn_arrays(*frames((), rows))
    a1 = int(a.offsets[KINDS.index("user")]) + list(a.node_ids[KINDS.index("user")]).index("a1")
    sizes = [
        ring_risk(a, int(a.t[-1]) + 1, params=p).ring_size[a1]
        for p in (RingParams(card_min_users=3), RingParams())
    ]
    assert sizes == [6, 3]
