"""Point-in-time graph risk: nothing from after a transaction's snapshot reaches its features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gnn.features import GRAPH_FEATURES
from gnn.graphdata import GraphConfig, build_snapshot, txn_arrays
from gnn.labelprop import LP_FEATURES
from gnn.model import GcnConfig
from gnn.pit import PitConfig, graph_risk_features, snapshot_rank

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-03-02", tz="UTC")


def world(days: int = 6, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ring (users r0..r3 sharing device dR and ip iR) among ordinary users; ring txns are
    fraud, labelled 1.5 days later."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        for k in range(30):
            u = int(rng.integers(0, 12))
            rows.append(
                (
                    T0 + d * DAY + pd.Timedelta(minutes=40 * k + 1),
                    f"u{u}",
                    f"c{u}",
                    f"d{u}",
                    f"i{u}",
                    0,
                )
            )
        for r in range(4):
            rows.append(
                (T0 + d * DAY + pd.Timedelta(hours=3 + r), f"r{r}", f"cr{r}", "dR", "iR", 1)
            )
    df = pd.DataFrame(rows, columns=["ts", "user_id", "card_id", "device_id", "ip", "fraud"])
    df = df.sort_values("ts", kind="mergesort").reset_index(drop=True)
    df["txn_id"] = [f"t{i:04d}" for i in range(len(df))]
    df["merchant_id"] = "m1"
    df["amount"] = 20.0
    labels = pd.DataFrame(
        {
            "txn_id": df["txn_id"][df["fraud"] == 1],
            "label": np.int8(1),
            "label_ts": df["ts"][df["fraud"] == 1] + pd.Timedelta(hours=36),
        }
    )
    return df.drop(columns=["fraud"]), labels


CFG = PitConfig(
    graph=GraphConfig(target_days=2.0, label_delay_days=1.5, min_ring=2),
    gcn=GcnConfig(hidden_channels=8, epochs=15, patience=15, min_positives=1, seed=1),
    retrain_every=1,
    gnn_features=True,  # the graph model's per-entity features are held to the same rule
)


def features(txns: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    return graph_risk_features(txn_arrays(txns, labels), cfg=CFG, progress=False).features


def test_no_leak_from_later_labels_or_transactions() -> None:
    txns, labels = world()
    base = features(txns, labels)
    t = T0 + 4 * DAY + pd.Timedelta(hours=5)  # a moment inside day 4
    upto = (txns["ts"] <= t).to_numpy()
    assert base.loc[upto, "ring_fraud_rate"].max() > 0  # the ring is visible (labels from day <= 2)
    # (1) a label that arrives after t, about a transaction before t
    late = pd.DataFrame(
        {
            "txn_id": [txns["txn_id"][3]],
            "label": [np.int8(1)],
            "label_ts": [t + pd.Timedelta(minutes=1)],
        }
    )
    with_late = features(txns, pd.concat([labels, late], ignore_index=True))
    pd.testing.assert_frame_equal(with_late[upto], base[upto], rtol=1e-5)
    # (2) transactions after t, new entities and a burst on the ring's device included
    extra = pd.DataFrame(
        {
            "ts": [t + pd.Timedelta(minutes=m) for m in (1, 2, 3)]
            + [T0 + 5 * DAY + pd.Timedelta(hours=20)],
            "user_id": ["new1", "r0", "u1", "new2"],
            "card_id": ["cn", "cr0", "c1", "cn2"],
            "device_id": ["dR", "dR", "dR", "dn"],
            "ip": ["iR", "iN", "i1", "in"],
            "merchant_id": "m1",
            "amount": 999.0,
            "txn_id": ["x1", "x2", "x3", "x4"],
        }
    )
    more = pd.concat([txns, extra], ignore_index=True).sort_values(
        ["ts", "txn_id"], kind="mergesort"
    )
    more = more.reset_index(drop=True)
    with_more = features(more, labels)
    keep = (more["ts"] <= t).to_numpy()
    pd.testing.assert_frame_equal(
        with_more[keep].reset_index(drop=True), base[upto].reset_index(drop=True), rtol=1e-5
    )


def test_a_label_known_before_the_snapshot_does_change_features() -> None:
    """Control: the check above can fail. An early label on an ordinary user's txn moves risk."""
    txns, labels = world()
    base = features(txns, labels)
    early = pd.DataFrame(
        {
            "txn_id": [txns["txn_id"][0]],
            "label": [np.int8(1)],
            "label_ts": [T0 + pd.Timedelta(hours=2)],
        }
    )
    changed = features(txns, pd.concat([labels, early], ignore_index=True))
    after = (txns["ts"] >= T0 + 2 * DAY).to_numpy()
    for cols in (GRAPH_FEATURES, LP_FEATURES):
        assert not np.allclose(
            changed.loc[after, list(cols)].fillna(-1), base.loc[after, list(cols)].fillna(-1)
        )


def test_snapshot_sees_only_the_past() -> None:
    txns, labels = world(days=3)
    a = txn_arrays(txns, labels)
    at = int((T0 + 2 * DAY).value // 1000)
    snap = build_snapshot(a, at, cfg=GraphConfig(min_ring=2))
    seen = set(snap.nodes.tolist())
    later = a.node[a.t >= at]
    only_later = set(later[later >= 0].tolist()) - set(
        a.node[a.t < at][a.node[a.t < at] >= 0].tolist()
    )
    assert not (seen & only_later)
    # fraud counts come only from labels that arrived before `at` (day 0's ring txns: 4 of them)
    assert snap.x[:, 8].sum() == 4 * 5  # each labelled txn counts on its 5 entities
    dr = snap.local(np.array([a.offsets[2] + list(a.node_ids[2]).index("dR")]))[0]
    assert snap.ring_size[dr] == 4
    assert snap.ring_fraud_rate[dr] == 1.0
    # no entity first seen from `at` on has risk; an unseen entity is NaN, not 0
    feats = features(txns, labels)
    assert np.isnan(feats.loc[0, "user_risk"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=60),
    st.floats(0.5, 2.0),
)
def test_the_c_score_is_a_rank_that_a_refit_rescaling_its_probabilities_keeps(
    p: list[int], power: float
) -> None:
    """A refit that only rescales the probabilities (any increasing map) leaves (c)'s score, and
    so its validation threshold's meaning, unchanged; raw probabilities would move under it."""
    probs = np.asarray(p) / 1000.0
    rank = snapshot_rank(probs)
    assert np.array_equal(rank, snapshot_rank(probs**power))
    assert ((rank > 0) & (rank <= 1)).all() and rank.max() == 1.0
    order = np.argsort(probs, kind="stable")
    assert (np.diff(rank[order]) >= 0).all()  # higher probability, rank at least as high


def test_a_snapshot_holds_each_payee_at_the_account_it_is_paid_at() -> None:
    """Transfers a -> b -> c -> a (a's labelled) and c -> d: every payee, d too although it
    never pays, is a user of the snapshot tied to its account, with its receipts counted in its
    activity but not in its amount; a labelled transfer counts for both parties, as the store
    keeps them."""
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
    txns = pd.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(4)],
            "ts": [T0 + i * pd.Timedelta(hours=1) for i in range(4)],
            "user_id": [p for p, _ in pairs],
            "card_id": None, "device_id": None, "ip": None,
            "merchant_id": [q for _, q in pairs],
            "payee_user_id": [q for _, q in pairs],
            "amount": 50.0,
        }
    )  # fmt: skip
    labels = pd.DataFrame({"txn_id": ["t0"], "label": [1], "label_ts": [T0 + DAY]})
    a = txn_arrays(txns, labels)
    snap = build_snapshot(a, int((T0 + 2 * DAY).value // 1000), cfg=GraphConfig(min_ring=3))

    def row(kind: int, name: str) -> int:
        return int(snap.local(np.array([a.offsets[kind] + list(a.node_ids[kind]).index(name)]))[0])

    d, acct_d, b = row(0, "d"), row(4, "d"), row(0, "b")
    assert (snap.x[d, 6], snap.x[d, 7]) == (np.float32(np.log1p(1)), 0.0)  # one receipt, no amount
    assert (snap.x[b, 6], snap.x[b, 7]) == (np.float32(np.log1p(2)), np.float32(np.log1p(50)))
    edges = set(zip(snap.edge_index[0].tolist(), snap.edge_index[1].tolist(), strict=True))
    assert (d, acct_d) in edges and (row(0, "c"), acct_d) in edges
    # a's labelled transfer counts for a and its payee b, and once for b's account
    assert (snap.x[row(0, "a"), 8], snap.x[b, 8], snap.x[row(4, "b"), 8]) == (1, 1, 1)
    assert snap.x[row(0, "c"), 8] == 0
    assert snap.ring_size[row(0, "a")] == 4  # a, b, c and d through their accounts
