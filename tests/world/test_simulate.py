"""The synthetic world: determinism, layout, planted structure, labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from fraudring.errors import InvalidInput
from world import schema
from world.io import WorldNotFound, iter_transactions, match_rings, read_world, ring_members
from world.rings import CREW, TYPOLOGIES
from world.simulate import generate

FILES = (schema.TRANSACTIONS_FILE, schema.LABELS_FILE, schema.TRUTH_FILE, schema.META_FILE)


def _digests(path: Path) -> dict[str, str]:
    return {f: hashlib.sha256((path / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    generate(out=out, transactions=12_000, seed=11, progress=False)
    return out


def test_same_seed_byte_identical_and_other_seed_differs(small: Path, tmp_path: Path) -> None:
    generate(out=tmp_path / "a", transactions=12_000, seed=11, progress=False)
    generate(out=tmp_path / "b", transactions=12_000, seed=12, progress=False)
    assert _digests(tmp_path / "a") == _digests(small)
    other = _digests(tmp_path / "b")
    assert all(other[f] != _digests(small)[f] for f in FILES)


def test_layout_matches_schema_and_is_sorted(small: Path) -> None:
    w = read_world(small)
    assert w.transactions.schema.equals(schema.TRANSACTIONS)
    assert w.labels.schema.equals(schema.LABELS)
    assert w.truth.schema.equals(schema.TRUTH)
    assert w.transactions.num_rows == 12_000 == w.truth.num_rows
    assert w.transactions.column("txn_id").equals(w.truth.column("txn_id"))
    ts = w.transactions.column("ts").cast(pa.int64()).to_numpy()
    assert (ts[1:] >= ts[:-1]).all()
    assert len(set(w.transactions.column("txn_id").to_pylist())) == 12_000
    batches = list(iter_transactions(small, batch_size=5_000))
    assert [b.num_rows for b in batches] == [5_000, 5_000, 2_000]


def test_bad_parameters_and_missing_world(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="difficulty"):
        generate(out=tmp_path, transactions=1_000, seed=1, difficulty="medium", progress=False)
    with pytest.raises(InvalidInput, match="transactions"):
        generate(out=tmp_path, transactions=10, seed=1, progress=False)
    with pytest.raises(WorldNotFound, match="not a world directory"):
        read_world(tmp_path / "nothing")


# -- planted structure ---------------------------------------------------------------------------

DELAY_DAYS = 5.0


@pytest.fixture(scope="module")
def rich_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A world with a high fraud rate so that every typology is planted several times."""
    out = tmp_path_factory.mktemp("world") / "rich"
    generate(
        out=out,
        transactions=30_000,
        seed=5,
        fraud_rate=0.01,
        label_delay_days=DELAY_DAYS,
        progress=False,
    )
    w = read_world(out)
    df = w.transactions.to_pandas().join(w.truth.to_pandas().drop(columns="txn_id"))
    return out, df


def _rings(df: pd.DataFrame, typology: str) -> list[pd.DataFrame]:
    rows = df[df["typology"] == typology]
    return [g for _, g in rows.groupby("ring_id")]


def _connected_by(g: pd.DataFrame, cols: list[str]) -> bool:
    """Every member shares at least one of `cols` with another member, within the ring's rows."""
    members = set(g.loc[g["user_is_ring_member"], "user_id"])
    linked: set[str] = set()
    for col in cols:
        users = g.dropna(subset=[col]).groupby(col)["user_id"].agg(set)
        for us in users:
            if len(us & members) >= 2:
                linked |= us & members
    return linked == members


def test_every_typology_is_planted_and_membership_matches_meta(rich_world) -> None:
    out, df = rich_world
    meta = read_world(out).meta
    assert all(meta["rings_by_typology"][t] >= 1 for t in TYPOLOGIES), meta["rings_by_typology"]
    assert len(meta["rings"]) >= 6
    members = ring_members(
        pa.Table.from_pandas(df[["ring_id", "user_is_ring_member"]]),
        pa.Table.from_pandas(df[["user_id"]]),
    )
    sizes = {r["ring_id"]: r["size"] for r in meta["rings"]}
    assert {r: len(m) for r, m in members.items()} == sizes
    assert all(3 <= s <= 30 for s in sizes.values())
    # Rings do not overlap.
    all_members = [u for m in members.values() for u in m]
    assert len(all_members) == len(set(all_members))


def test_synthetic_identities_share_devices_ips_and_cards(rich_world) -> None:
    _, df = rich_world
    for g in _rings(df, "synthetic_identity"):
        assert _connected_by(g, ["device_id", "ip"])
        card_users = g.groupby("card_id")["user_id"].nunique()
        assert (card_users >= 2).any(), "members share cards"
        # Busting out: their fraud comes after their (ordinary) history.
        fraud_ts, history_ts = g.loc[g["is_fraud"], "ts"], g.loc[~g["is_fraud"], "ts"]
        assert len(history_ts) > 0
        assert fraud_ts.median() > history_ts.min()


def test_card_testing_many_cards_few_devices(rich_world) -> None:
    _, df = rich_world
    for g in _rings(df, "card_testing"):
        fraud = g[g["is_fraud"]]
        n_members = g["user_id"].nunique()
        # hard setting: a device per pair of members, chained (the easy one: one or two devices)
        assert fraud["device_id"].nunique() <= max(2, n_members // 2)
        assert fraud["card_id"].nunique() >= n_members
        assert fraud["card_id"].nunique() >= 2 * fraud["device_id"].nunique()
        assert _connected_by(g, ["device_id"])
        # The tested cards are stolen: their owners also use them, outside the ring.
        owners = df[df["card_id"].isin(fraud["card_id"]) & df["ring_id"].isna()]
        assert owners["user_id"].nunique() >= 0.5 * fraud["card_id"].nunique()


def test_account_takeover_uses_ring_devices(rich_world) -> None:
    _, df = rich_world
    for g in _rings(df, "ato"):
        assert g["is_fraud"].all() and g["user_is_ring_member"].all()
        victims = set(g["user_id"])
        own = df[df["user_id"].isin(victims) & df["ring_id"].isna()]
        # Established accounts with their own history on their own devices...
        assert own["user_id"].nunique() == len(victims)
        assert set(g["device_id"]).isdisjoint(set(own["device_id"].dropna()))
        # ...suddenly used from the ring's few devices, shared across victims.
        assert g["device_id"].nunique() < len(victims)
        assert _connected_by(g, ["device_id", "ip"])


def test_hard_rings_share_entities_only_as_households_do(rich_world) -> None:
    """No ring device or IP has more users than a household's (takeovers: a crew's, see
    world.rings.CREW): one hop shows nothing unusual."""
    _, df = rich_world
    for typ, most in (
        ("synthetic_identity", 4),
        ("card_testing", 4),
        ("mule", 4),
        ("ato", 2 * CREW),
    ):
        ring = df[df["typology"] == typ]
        for col in ("device_id", "ip"):
            ents = set(ring.loc[ring["is_fraud"], col].dropna())
            users = df[df[col].isin(ents)].groupby(col)["user_id"].nunique()
            assert len(users) and users.max() <= most, (typ, col)
    # ...yet every member shares a device, IP or card with another member
    for g in _rings(df, "synthetic_identity"):
        assert _connected_by(g, ["device_id", "ip", "card_id"])


def test_mule_ring_cycles_through_few_colluding_merchants(rich_world) -> None:
    _, df = rich_world
    for g in _rings(df, "mule"):
        fraud = g[g["is_fraud"]]
        shops = set(fraud["merchant_id"])
        assert len(shops) <= 3
        at_shops = df[df["merchant_id"].isin(shops)]
        assert (at_shops["ring_id"] == g["ring_id"].iloc[0]).mean() > 0.7
        assert _connected_by(g, ["merchant_id"])


def test_hub_ips_and_household_devices(rich_world) -> None:
    _, df = rich_world
    legit = df[~df["user_is_ring_member"]]
    ip_users = df.groupby("ip")["user_id"].nunique()
    hubs = ip_users[ip_users >= 100].index
    assert len(hubs) >= 2, "carrier NAT / public wifi IPs shared by hundreds"
    for hub in hubs:
        users = df.loc[df["ip"] == hub, ["user_id", "user_is_ring_member"]].drop_duplicates()
        assert users["user_is_ring_member"].mean() < 0.1
    # Offices: legitimate IPs shared by about a dozen colleagues (a confounder for rings).
    legit_ip_users = legit.groupby("ip")["user_id"].nunique()
    assert legit_ip_users.between(5, 30).sum() >= 3
    dev_users = legit.groupby("device_id")["user_id"].nunique()
    assert dev_users.max() <= 4, "a household device has 2-4 users"
    assert (dev_users >= 2).sum() >= 20
    assert df["device_id"].isna().mean() > 0.05, "in-store payments have no device"


def test_labels_respect_the_delay_and_report_most_fraud(rich_world) -> None:
    out, df = rich_world
    labels = read_world(out).labels.to_pandas().merge(df, on="txn_id", validate="one_to_one")
    assert len(labels) > 0
    delay = labels["label_ts"] - labels["ts"]
    assert (delay >= pd.Timedelta(days=DELAY_DAYS)).all()
    assert (labels["label"] == labels["is_fraud"].astype(int)).all()
    reported = labels["label"].sum() / df["is_fraud"].sum()
    assert 0.8 <= reported < 1.0
    assert (labels["label"] == 0).any(), "some confirmed-legit labels"
    lts = labels.sort_values("label_ts")["label_ts"]
    assert lts.is_monotonic_increasing


def test_fraud_rate_near_parameter(rich_world, small: Path) -> None:
    _, df = rich_world
    assert df["is_fraud"].mean() == pytest.approx(0.01, rel=0.2)
    meta = read_world(small).meta
    assert meta["counts"]["fraud_transactions"] / 12_000 == pytest.approx(
        0.002, rel=0.5
    )  # a 24-txn budget: one ring more or less


def test_hard_members_look_ordinary_easy_do_not(rich_world, tmp_path: Path) -> None:
    _, df = rich_world
    legit = df[~df["user_is_ring_member"]]
    # No amount threshold separates them: the amount alone ranks fraud near chance.
    assert 0.35 < roc_auc_score(df["is_fraud"], df["amount"]) < 0.65
    assert 0.45 < roc_auc_score(df["user_is_ring_member"], df["amount"]) < 0.55
    for rows in (df[df["user_is_ring_member"]], df[df["is_fraud"]]):
        assert rows["amount"].median() == pytest.approx(legit["amount"].median(), rel=0.35)
        night = rows["ts"].dt.hour.between(1, 4).mean()
        assert night < 0.1
    generate(
        out=tmp_path / "easy",
        transactions=20_000,
        seed=5,
        fraud_rate=0.01,
        difficulty="easy",
        progress=False,
    )
    w = read_world(tmp_path / "easy")
    easy = w.transactions.to_pandas().join(w.truth.to_pandas().drop(columns="txn_id"))
    fraud, ok = easy[easy["is_fraud"]], easy[~easy["is_fraud"]]
    assert fraud["ts"].dt.hour.between(0, 5).mean() > 0.5
    big_or_tiny = (fraud["amount"] > 5 * ok["amount"].median()) | (fraud["amount"] < 3)
    assert big_or_tiny.mean() > 0.8


def test_match_rings_counts_jaccard_matches_and_rings_of_strangers() -> None:
    planted = {"r1": {"a", "b", "c", "d"}, "r2": {"e", "f", "g"}, "pair": {"h", "i"}}
    found = [{"a", "b", "c"}, {"e", "x", "y", "z"}, {"p", "q", "r"}, {"h", "i", "j"}]
    # r1 matched (3/4), r2 not (1/6), the pair is below size 3; one found ring has no member
    assert match_rings(planted, found) == (1, 2, 1)
    assert match_rings({}, []) == (0, 0, 0)
