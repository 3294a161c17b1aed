"""IBM AMLSim sample outputs (account-to-account transfers with laundering rings) as worlds.

Each transfer names its payer (the user) and its payee (`payee_user_id`, a user too); the
payee's account is the counterparty (the merchant column), which the graph ties the payee to,
so a laundering cycle is a relay of pairs and a fan-in a star. The data has no
pattern ids. Laundering accounts also pay each other once now and then, which chains all of them
into one group; a pattern repeats its transfers, so a pattern here is a connected group of
laundering accounts over the pairs that transfer to each other at least twice, and those
transfers are the fraudulent transactions. Each such transfer is reported (``report_rate``)
``label_delay_days`` after it; a step is a day, and a transfer's second within its day is drawn
from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fraudring.errors import InvalidInput
from world import schema
from world.io import write_world
from world.simulate import START_US

US_PER_DAY = 86_400_000_000


def _read(src: Path, name: str, cols: list[str]) -> pd.DataFrame:
    file = src / name
    if not file.is_file():
        raise InvalidInput(
            f"{file} not found: --amlsim must be an AMLSim sample folder (nodes.csv, "
            "transactions.csv); an AMLSim output's transactions file loads with --input and "
            "--columns"
        )
    df = pd.read_csv(file)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"{file}: missing columns {', '.join(missing)}")
    return df


def load_amlsim(
    *,
    src: Path,
    out: Path,
    seed: int = 7,
    label_delay_days: float = 7.0,
    report_rate: float = 0.93,
) -> dict[str, int]:
    """Write the AMLSim sample at `src` as a world at `out`; returns its counts."""
    nodes = _read(src, "nodes.csv", ["nodeid", "isFraud"])
    txns = _read(src, "transactions.csv", ["sourceNodeId", "targetNodeId", "value", "time"])
    rng = np.random.default_rng(seed)
    bad = set(nodes.loc[nodes["isFraud"] == 1, "nodeid"].tolist())
    src_id, dst_id = txns["sourceNodeId"].to_numpy(), txns["targetNodeId"].to_numpy()
    both = np.isin(src_id, list(bad)) & np.isin(dst_id, list(bad))
    pair = pd.Series(src_id * (1 << 32) + dst_id)
    fraud = both & (pair.map(pair[both].value_counts()).fillna(0).to_numpy() >= 2)
    n_nodes = int(max(nodes["nodeid"].max(), src_id.max(), dst_id.max())) + 1
    graph = coo_matrix(
        (np.ones(int(fraud.sum())), (src_id[fraud], dst_id[fraud])), shape=(n_nodes, n_nodes)
    )
    _, comp = connected_components(graph, directed=False)
    ts = START_US + txns["time"].to_numpy(np.int64) * US_PER_DAY
    ts = ts + rng.integers(0, US_PER_DAY, len(txns))
    order = np.argsort(ts, kind="stable")
    ts, src_id, dst_id, fraud = ts[order], src_id[order], dst_id[order], fraud[order]
    amount = txns["value"].to_numpy(np.float64)[order]
    n = len(ts)
    txn_id = [f"t{i:010d}" for i in range(n)]
    ring = [f"aml-{int(comp[s]):05d}" if f else None for s, f in zip(src_id, fraud, strict=True)]
    user = [f"a{int(s)}" for s in src_id]
    transactions = pa.Table.from_pydict(
        {
            "txn_id": txn_id,
            "ts": pa.array(ts, type=schema.TS),
            "user_id": user,
            "card_id": pa.nulls(n, pa.string()),
            "device_id": pa.nulls(n, pa.string()),
            "ip": pa.nulls(n, pa.string()),
            "merchant_id": [f"a{int(d)}" for d in dst_id],
            "amount": amount,
            "currency": ["USD"] * n,
            "merchant_category": ["transfer"] * n,
            "payee_user_id": [f"a{int(d)}" for d in dst_id],
        },
        schema=schema.TRANSACTIONS,
    )
    typology = "aml_" + src.name.split("_")[-1].rstrip("0123456789")
    truth = pa.Table.from_pydict(
        {
            "txn_id": txn_id,
            "is_fraud": fraud,
            "ring_id": ring,
            "typology": [typology if f else None for f in fraud],
            "user_is_ring_member": np.isin(src_id, list(bad)),
        },
        schema=schema.TRUTH,
    )
    labelled = np.flatnonzero(fraud & (rng.random(n) < report_rate))
    labels = pa.Table.from_pydict(
        {
            "txn_id": [txn_id[i] for i in labelled],
            "label": np.ones(len(labelled), dtype=np.int8),
            "label_ts": pa.array(ts[labelled] + int(label_delay_days * US_PER_DAY), type=schema.TS),
        },
        schema=schema.LABELS,
    )
    rings = {r for r in ring if r is not None}
    counts = {
        "transactions": n,
        "fraud_transactions": int(fraud.sum()),
        "labels": len(labelled),
        "fraud_labels": len(labelled),
        "users": len(set(user)),
        "cards": 0,
        "devices": 0,
        "ips": 0,
        "merchants": len(set(dst_id.tolist())),
        "rings": len(rings),
    }
    meta = {
        "kind": "amlsim",
        "source": src.name,
        "seed": seed,
        "counterparty": "transfers: payee_user_id receives, merchant_id is its account",
        "params": {"label_delay_days": label_delay_days, "report_rate": report_rate},
        "counts": counts,
        "rings": [],
    }
    write_world(out, transactions=transactions, labels=labels, truth=truth, meta=meta)
    return counts
