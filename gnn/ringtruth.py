"""Ring truth of a world (planted rings, or confirmed cases loaded with a `ring` column) and
the rings the served rule would flag against it, for `fraudring evaluate`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from fraudring.contract.ids import PAYEE_FIELD
from gnn.dataset import Dataset
from gnn.features import US
from graph.schemas import RingParams

#: Why ring recall is low on an AMLSim world written before transfers named their payee.
PAYEE_ACCOUNTS: Final = (
    "this world's transfers name no payee (loaded by an earlier fraudring): each payee is only "
    "a counterparty node its payers share, so a laundering cycle shares no entity; load it "
    "again (fraudring load --amlsim) to tie each payee to its own account"
)


def window_warning(rings: dict[str, float]) -> str | None:
    """What to say when the confirmed rings' members act further apart than the ring rule's
    window (`rings`: what `ring_detection` returned): the rule then sees a part of each ring."""
    median = rings.get("ring_reach_days_median", float("nan"))
    window = rings.get("ring_window_days", float("nan"))
    if not median > window:
        return None
    return (
        f"a window holding a fraud of every member of a confirmed ring here reaches back "
        f"{median:.0f} days (median), beyond the ring rule's {window:g}: it sees a part of each "
        f"ring and finds few whole; FRAUDRING_RING_WINDOW_DAYS="
        f"{math.ceil(rings['ring_reach_days_p75']):d} (the 75th percentile) would see most whole"
    )


@dataclass
class RingTruth:
    first_fraud: dict[str, float]  # ring -> epoch seconds of its first fraud
    members: dict[str, set[str]]
    last_fraud: dict[str, float]  # ring -> epoch seconds of its last fraud
    #: ring -> the earliest of its members' last frauds: a window back to there holds a fraud
    #: of every member
    whole_since: dict[str, float]


def ring_truth(ds: Dataset, *, start: int, end: int) -> RingTruth | None:
    """Planted rings whose first fraud falls in [start, end) (world truth; None without it)."""
    tr = ds.frames.truth
    if tr is None or "ring_id" not in tr.columns:
        return None
    from world.io import frame_ring_members

    txns = ds.frames.txns
    members = frame_ring_members(tr, txns)
    tx = txns[["txn_id", "user_id"]].assign(_t=ds.t)
    if PAYEE_FIELD in txns.columns:  # each transfer's payee: its frauds date the ring too
        paid = txns[PAYEE_FIELD].notna().to_numpy()
        payees = txns.loc[paid, ["txn_id", PAYEE_FIELD]].rename(columns={PAYEE_FIELD: "user_id"})
        tx = pd.concat([tx, payees.assign(_t=ds.t[paid])], ignore_index=True)
    df = tx.merge(tr, on="txn_id", how="inner")
    pairs = [(r, u) for r, us in members.items() for u in us]
    df = df.merge(pd.DataFrame(pairs, columns=["ring_id", "user_id"]), on=["ring_id", "user_id"])
    fraud = df[df["is_fraud"] & (df["_t"] < end)]
    by_ring = fraud.groupby("ring_id")["_t"]
    first, last = by_ring.min(), by_ring.max()
    first = first[(first >= start) & (first < end)]
    by_member = fraud.groupby(["ring_id", "user_id"])["_t"].max()
    whole = by_member.groupby(level=0).min()
    return RingTruth(
        {str(k): v / US for k, v in first.items()},
        members,
        {str(k): v / US for k, v in last.items()},
        {str(k): v / US for k, v in whole.items()},
    )


def ring_detection(ds: Dataset, *, at: int, params: RingParams) -> dict[str, float]:
    """The rings `graph.rings` would flag at ``at`` (labels known by then) against the world's
    ring truth (planted, or confirmed cases loaded with a `ring` column): recall of rings of 3
    or more with a fraud in the rule's window before ``at`` (Jaccard >= 0.5; rings dormant
    longer are counted apart: the rule forgets their links by design) and the share of flagged
    rings of 3 or more without any of their members. Empty without ring truth."""
    from gnn.graphdata import txn_arrays
    from gnn.ringrisk import ring_groups
    from world.io import match_rings

    truth = ring_truth(ds, start=0, end=at)
    if truth is None or not truth.members:
        return {}
    a = txn_arrays(ds.frames.txns, ds.frames.labels)
    names = a.node_ids[0]
    groups = [c for c in ring_groups(a, at, params=params) if c.suspicious and len(c.members) >= 3]
    found = [{str(names[int(u)]) for u in c.members} for c in groups]
    confirmed = {r: truth.members[r] for r in truth.first_fraud if r in truth.members}
    since = at / US - params.window_days * 86_400
    planted = {r: m for r, m in confirmed.items() if truth.last_fraud[r] >= since}
    dormant = {r: m for r, m in confirmed.items() if r not in planted}
    # how far back a window must reach to hold a fraud of every member, per live ring
    whole = truth.whole_since
    days = [(at / US - whole[r]) / 86_400 for r, m in planted.items() if len(m) >= 3 and r in whole]
    hit, targets, _ = match_rings(planted, found)
    false = match_rings(confirmed, found)[2]  # a flagged dormant ring is no false one
    shape = [f for f, c in zip(found, groups, strict=True) if c.flag == "shape"]
    return {
        "ring_recall": hit / targets if targets else float("nan"),
        "ring_false_share": false / len(found) if found else 0.0,
        "rings_confirmed": float(targets),
        # confirmed rings (3 or more) with no fraud in the window: not in the recall
        "rings_dormant": float(sum(len(m) >= 3 for m in dormant.values())),
        "ring_window_days": params.window_days,
        "ring_reach_days_median": float(np.median(days)) if days else float("nan"),
        "ring_reach_days_p75": float(np.percentile(days, 75)) if days else float("nan"),
        "rings_flagged": float(len(found)),
        # flagged on shape alone (`graph.ringshape`), and those without a confirmed member
        "rings_flagged_on_shape": float(len(shape)),
        "rings_false_on_shape": float(match_rings(planted, shape)[2]),
    }
