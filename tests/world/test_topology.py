"""Ring topologies and their look-alikes, the AMLSim loader, and the evidence rule on its own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fraudring.errors import InvalidInput
from graph.ringevidence import evidence, evidence_rings
from graph.schemas import RingParams
from world.amlsim import load_amlsim
from world.io import read_meta, read_world, ring_members
from world.simulate import generate


def _fraud(path: Path) -> pd.DataFrame:
    w = read_world(path)
    tx = w.transactions.to_pandas()
    tr = w.truth.to_pandas()
    return tx.assign(ring=tr["ring_id"], fraud=tr["is_fraud"])[tr["is_fraud"]]


@pytest.fixture(scope="module", params=["chain", "star", "bipartite", "mule"])
def shaped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp(request.param) / "w"
    generate(
        out=out, transactions=40_000, seed=3, fraud_rate=0.005, topology=request.param,
        progress=False,
    )  # fmt: skip
    return request.param, out


def test_each_shape_shares_as_it_says(shaped) -> None:
    shape, out = shaped
    meta = read_meta(out)
    assert {r["topology"] for r in meta["rings"]} == {shape}
    assert all(n > 0 for n in meta["lookalikes"].values())
    f = _fraud(out)
    for _rid, g in f.groupby("ring"):
        users = g["user_id"].nunique()
        per = {c: g.groupby(c)["user_id"].nunique() for c in ("device_id", "ip", "card_id")}
        widest = max(int(s.max()) for s in per.values() if len(s))
        if shape == "chain":  # a relay: no entity is ring-wide
            assert widest <= 3
        elif shape == "star":  # one controller for everyone
            assert widest == users
        elif shape == "bipartite":  # many cards, few devices
            assert g["card_id"].nunique() >= 2 * g["device_id"].nunique()
        else:  # mule: only merchants are shared
            assert widest == 1 and g["merchant_id"].nunique() <= 3


def test_truth_keeps_members_and_seed_repeats(shaped, tmp_path: Path) -> None:
    shape, out = shaped
    w = read_world(out)
    planted = ring_members(w.truth, w.transactions)
    assert {r["ring_id"] for r in read_meta(out)["rings"]} == set(planted)
    again = tmp_path / "again"
    generate(
        out=again, transactions=40_000, seed=3, fraud_rate=0.005, topology=shape,
        progress=False,
    )  # fmt: skip
    assert (again / "transactions.parquet").read_bytes() == (
        out / "transactions.parquet"
    ).read_bytes()


def test_dense_has_no_lookalikes_and_bad_options_are_refused(tmp_path: Path) -> None:
    generate(out=tmp_path / "d", transactions=5_000, seed=1, progress=False)
    assert "lookalikes" not in read_meta(tmp_path / "d")
    with pytest.raises(InvalidInput, match="topology"):
        generate(out=tmp_path / "x", transactions=5_000, seed=1, topology="ring", progress=False)
    with pytest.raises(InvalidInput, match="false_label_rate"):
        generate(out=tmp_path / "x", transactions=5_000, seed=1, false_label_rate=0.5)


def test_mistaken_labels_flag_legitimate_transactions(tmp_path: Path) -> None:
    generate(out=tmp_path / "w", transactions=20_000, seed=2, false_label_rate=0.01, progress=False)
    w = read_world(tmp_path / "w")
    lab = w.labels.to_pandas().merge(w.truth.to_pandas(), on="txn_id")
    mistaken = ((lab["label"] == 1) & ~lab["is_fraud"]).sum()
    assert 120 < mistaken < 300  # about 1% of 20,000


def test_amlsim_patterns_are_repeated_transfers_among_laundering_accounts(tmp_path: Path) -> None:
    src = tmp_path / "20K_cycle1"
    src.mkdir()
    pd.DataFrame(
        {"nodeid": range(6), "isFraud": [1, 1, 1, 1, 0, 0], "init_balance": 1.0,
         "fraudStep": [1, 1, 1, -1, -1, -1]}
    ).to_csv(src / "nodes.csv", index=False)  # fmt: skip
    cycle = [(0, 1), (1, 2), (2, 0)] * 2  # a cycle, twice
    once = [(2, 3), (4, 5), (5, 0)]  # a one-off between laundering accounts, and legit ones
    rows = [(s, t, 100.0, i) for i, (s, t) in enumerate(cycle + once)]
    pd.DataFrame(rows, columns=["sourceNodeId", "targetNodeId", "value", "time"]).to_csv(
        src / "transactions.csv", index=False
    )
    counts = load_amlsim(src=src, out=tmp_path / "w", report_rate=1.0)
    assert counts["fraud_transactions"] == 6 and counts["rings"] == 1
    w = read_world(tmp_path / "w")
    assert list(ring_members(w.truth, w.transactions).values()) == [{"a0", "a1", "a2"}]
    assert set(w.transactions.column("merchant_id").to_pylist()) >= {"a0", "a1", "a2"}
    with pytest.raises(InvalidInput, match=r"nodes\.csv"):
        load_amlsim(src=tmp_path, out=tmp_path / "x")


def test_a_fan_out_s_members_are_its_payer_and_the_accounts_it_fed(tmp_path: Path) -> None:
    """Before, a ring's members were the payers of its transfers: a fan-out (one account
    paying three, twice each) was a ring of one, below any ring's size, and AMLSim's fan-in
    read backwards held 2 rings of 3 or more instead of 136."""
    src = tmp_path / "fanout"
    src.mkdir()
    pd.DataFrame(
        {"nodeid": range(5), "isFraud": [1, 1, 1, 1, 0], "init_balance": 1.0,
         "fraudStep": [1, 1, 1, 1, -1]}
    ).to_csv(src / "nodes.csv", index=False)  # fmt: skip
    rows = [(0, t, 100.0, i) for i, t in enumerate([1, 2, 3] * 2)] + [(4, 1, 5.0, 9)]
    pd.DataFrame(rows, columns=["sourceNodeId", "targetNodeId", "value", "time"]).to_csv(
        src / "transactions.csv", index=False
    )
    load_amlsim(src=src, out=tmp_path / "w", report_rate=1.0)
    w = read_world(tmp_path / "w")
    assert list(ring_members(w.truth, w.transactions).values()) == [{"a0", "a1", "a2", "a3"}]


RATES = {"device": 0.02, "ip": 0.02, "card": 0.02, "merchant": 0.02}


def test_evidence_is_how_unusual_the_labelled_sharing_is() -> None:
    assert evidence(2, 2, 0.02) == pytest.approx(0.0004)
    assert evidence(30, 2, 0.02) > 0.1  # two labelled in a dorm of thirty: nothing unusual
    assert evidence(5, 0, 0.02) == 1.0


def test_one_label_or_a_hub_flags_nobody_and_families_stay_out() -> None:
    p = RingParams()
    household = {("ip", "home"): (["h1", "h2", "h3"], ["h1"])}
    assert evidence_rings(household, rates=RATES, params=p) == []
    dorm = {("ip", "dorm"): ([f"s{k}" for k in range(30)], ["s1", "s2"])}
    assert evidence_rings(dorm, rates=RATES, params=p) == []
    crew = {
        ("device", "phone"): (["v1", "v2", "v3"], ["v1", "v2", "v3"]),
        ("ip", "home1"): (["v1", "f1"], ["v1"]),  # a victim's family, through IP and tablet
        ("device", "tablet1"): (["v1", "f1"], ["v1"]),
    }
    [ring] = evidence_rings(crew, rates=RATES, params=p)
    assert ring.members == ["v1", "v2", "v3"] and ring.suspicious


def test_labels_propagate_one_step_along_a_relay() -> None:
    p = RingParams(join_alpha=0.01)
    relay = {
        ("device", "d1"): (["a", "b"], ["a", "b"]),
        ("card", "c2"): (["b", "x"], ["b"]),  # x: the member whose label has not arrived
        ("ip", "i3"): (["x", "c"], ["c"]),
        ("device", "d4"): (["c", "d"], ["c", "d"]),
    }
    [ring] = evidence_rings(relay, rates=RATES, params=p)
    assert ring.members == ["a", "b", "c", "d", "x"]
    strict = RingParams(join_alpha=1e-6)
    assert sorted(r.members for r in evidence_rings(relay, rates=RATES, params=strict)) == [
        ["a", "b"],
        ["c", "d"],
    ]
