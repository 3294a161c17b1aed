"""Array-built graph snapshots of a world, as they stood at a moment ``at``.

A snapshot holds only what was knowable strictly before ``at``: transactions with ``ts < at``
(within ``lookback_days``) and labels with ``label_ts < at``. Node features use the layout of the
graph store's export (`graph.schemas.EXPORT_FEATURES`), so a GCN trained here scores an export of
the live graph. Rings are the graph helper's definition (`graph.rings`: users linked through a
shared card/device/IP with at most `hub_cap` users, components of at least `min_ring` users),
recomputed here on arrays because a snapshot has no store.

Training snapshots also carry a target: the share of a node's transactions in the last
``target_days`` before ``at`` that are known frauds (so a node's risk reads as "probability that
a transaction touching it is fraud", which keeps busy merchants from looking risky). Their label
features (fraud/legit counts, ring fraud rate) then use only transactions before that target
window, so a node's own target label never reaches its inputs, directly or via a neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fraudring.contract.ids import ENTITY_KINDS, PAYEE_FIELD
from gnn.features import DAY_US, ENTITY_COLUMNS, ts_micros
from graph.schemas import EXPORT_FEATURES, RECEIPT_AMOUNT

#: Node kinds in their index order (the contract's entity kinds).
KINDS: Final[tuple[str, ...]] = ENTITY_KINDS
MERCHANT: Final = KINDS.index("merchant")
#: Node feature columns: the graph store's export columns, so both build the same matrix.
NODE_FEATURES: Final = EXPORT_FEATURES
#: Columns that arrive as raw counts/days and are log-scaled before the GCN.
LOG_COLUMNS: Final = (8, 9, 10, 11)
NEVER: Final = np.iinfo(np.int64).max

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GraphConfig:
    lookback_days: float = 30.0
    hub_cap: int = 12
    merchant_cap: int = 6
    min_ring: int = 3
    target_days: float = 14.0
    label_delay_days: float = 7.0
    #: Label risk = recency-weighted known fraud rate, weights halving every `half_life_days`
    #: (a compromised terminal or device is risky now, not on its whole history), shrunk to the
    #: global rate with `prior_strength` pseudo-transactions.
    prior_strength: float = 1.0
    half_life_days: float = 3.0


@dataclass
class TxnArrays:
    """A world's transactions as arrays (rows sorted by ts) with global node ids per kind."""

    t: I64
    amount: F64
    node: I64  # [n, 5] global node id per kind (KINDS order), -1 where missing
    node_kind: npt.NDArray[np.int8]
    node_ids: list[npt.NDArray[np.object_]]  # per kind, id strings by code
    offsets: I64
    label: F64  # 1 fraud, 0 legit, NaN unlabelled
    label_ts: I64  # NEVER when unlabelled
    node_hash: npt.NDArray[np.uint64]  # stable hash of (kind, id): order-free seeded splits
    #: A transfer's receiving user node per row, -1 where the row is no transfer (the store ties
    #: the payee to the row's merchant node, `graph.ingest.with_payees`).
    payee: I64

    @property
    def n_nodes(self) -> int:
        return len(self.node_kind)


def txn_arrays(txns: pd.DataFrame, labels: pd.DataFrame | None) -> TxnArrays:
    t = ts_micros(txns["ts"])
    node = np.full((len(txns), len(KINDS)), -1, dtype=np.int64)
    offsets = np.zeros(len(KINDS) + 1, dtype=np.int64)
    ids: list[npt.NDArray[np.object_]] = []
    payees = txns[PAYEE_FIELD] if PAYEE_FIELD in txns.columns else None
    payee = np.full(len(txns), -1, dtype=np.int64)
    for k, kind in enumerate(KINDS):
        column = txns[ENTITY_COLUMNS[kind]]
        if kind == "user" and payees is not None:  # a payee is a user, maybe only ever paid
            column = pd.concat([column, payees], ignore_index=True)
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        if kind == "user" and payees is not None:
            payee = np.where(codes[len(txns) :] >= 0, codes[len(txns) :] + offsets[k], -1)
            codes = codes[: len(txns)]
        node[:, k] = np.where(codes >= 0, codes + offsets[k], -1)
        offsets[k + 1] = offsets[k] + len(uniques)
        ids.append(np.asarray(uniques, dtype=object))
    node_kind = np.repeat(np.arange(len(KINDS), dtype=np.int8), np.diff(offsets))
    label = np.full(len(txns), np.nan)
    label_ts = np.full(len(txns), NEVER, dtype=np.int64)
    if labels is not None and len(labels):
        lab = labels.assign(_lts=ts_micros(labels["label_ts"])).sort_values("_lts")
        lab = lab.drop_duplicates("txn_id", keep="first")
        pos = pd.Index(txns["txn_id"]).get_indexer(lab["txn_id"])
        ok = pos >= 0
        label[pos[ok]] = lab["label"].to_numpy(dtype=np.float64)[ok]
        label_ts[pos[ok]] = lab["_lts"].to_numpy()[ok]
    node_hash = np.concatenate(
        [
            pd.util.hash_array(np.array([f"{kind}:{i}" for i in ids_k], dtype=object))
            for kind, ids_k in zip(KINDS, ids, strict=True)
        ]
    ).astype(np.uint64)
    amount = txns["amount"].to_numpy(np.float64)
    return TxnArrays(t, amount, node, node_kind, ids, offsets, label, label_ts, node_hash, payee)


def receipt_rows(a: TxnArrays, lo: int, hi: int) -> tuple[I64, I64]:
    """The transfers among rows [lo, hi) and a receipt row of each one's payee: the payee at
    the transfer's merchant node (its account), no other entity. The store keeps a transfer so
    (`graph.ingest.with_payees`): both ends share the counterparty."""
    paid = lo + np.flatnonzero(a.payee[lo:hi] >= 0)
    node = np.full((len(paid), len(KINDS)), -1, dtype=np.int64)
    node[:, 0], node[:, MERCHANT] = a.payee[paid], a.node[paid, MERCHANT]
    return paid, node


@dataclass
class Snapshot:
    at: int
    nodes: I64  # global node ids present (sorted); local index = position
    x: npt.NDArray[np.float32]  # [m, len(NODE_FEATURES)]
    edge_index: I64  # [2, 2E] local, both directions
    label_risk: F64  # smoothed known fraud rate, the cold-start risk
    ring_size: F64
    ring_fraud_rate: F64
    target: npt.NDArray[np.float32] | None = None
    target_mask: npt.NDArray[np.bool_] | None = None
    target_weight: npt.NDArray[np.float32] | None = None

    def local(self, global_ids: I64) -> I64:
        """Local index of global node ids, -1 where absent from the snapshot."""
        out = np.full(len(global_ids), -1, dtype=np.int64)
        if len(self.nodes) == 0:
            return out
        pos = np.clip(np.searchsorted(self.nodes, global_ids), 0, len(self.nodes) - 1)
        ok = (global_ids >= 0) & (self.nodes[pos] == global_ids)
        out[ok] = pos[ok]
        return out


def _rings(users: I64, ents: I64, caps: I64, m: int, *, min_ring: int) -> tuple[I64, F64]:
    """Component id per local node (-1 outside a ring) and ring size (users) per node."""
    comp = np.full(m, -1, dtype=np.int64)
    size = np.zeros(m)
    if len(users) == 0:
        return comp, size
    deg = np.bincount(ents, minlength=m)
    keep = deg[ents] <= caps
    u, e = users[keep], ents[keep]
    g = coo_matrix((np.ones(len(u), dtype=np.int8), (u, e)), shape=(m, m))
    _, lab = connected_components(g, directed=False)
    is_user = np.zeros(m, dtype=bool)
    is_user[users] = True
    n_users = np.bincount(lab[is_user], minlength=lab.max() + 1)
    ring = n_users[lab] >= min_ring
    involved = np.zeros(m, dtype=bool)
    involved[u] = involved[e] = True
    ring &= involved
    comp[ring] = lab[ring]
    size[ring] = n_users[lab[ring]]
    return comp, size


def build_snapshot(a: TxnArrays, at: int, *, cfg: GraphConfig, training: bool = False) -> Snapshot:
    """The graph as of ``at`` (see module docstring for what is visible)."""
    lo = int(np.searchsorted(a.t, at - int(cfg.lookback_days * DAY_US), side="left"))
    hi = int(np.searchsorted(a.t, at, side="left"))
    paid, receipts = receipt_rows(a, lo, hi)  # amount 0, no label
    t = np.r_[a.t[lo:hi], a.t[paid]]
    node = np.concatenate([a.node[lo:hi], receipts])
    amount = np.r_[a.amount[lo:hi], np.full(len(paid), RECEIPT_AMOUNT)]
    label = np.r_[a.label[lo:hi], np.full(len(paid), np.nan)]
    label_ts = np.r_[a.label_ts[lo:hi], np.full(len(paid), NEVER, dtype=np.int64)]
    present = node[node >= 0]
    nodes = np.unique(present)
    m = len(nodes)
    loc = np.where(node >= 0, np.searchsorted(nodes, np.maximum(node, 0)), -1)
    x = np.zeros((m, len(NODE_FEATURES)), dtype=np.float64)
    if m:
        x[np.arange(m), a.node_kind[nodes]] = 1.0
    rows = np.repeat(np.arange(len(t)), len(KINDS)).reshape(-1, len(KINDS))
    valid = loc >= 0
    flat_loc, flat_row = loc[valid], rows[valid]
    n = np.bincount(flat_loc, minlength=m).astype(np.float64)
    amt = np.bincount(flat_loc, weights=amount[flat_row], minlength=m)
    first = np.full(m, NEVER, dtype=np.int64)
    last = np.zeros(m, dtype=np.int64)
    np.minimum.at(first, flat_loc, t[flat_row])
    np.maximum.at(last, flat_loc, t[flat_row])
    # Label visibility: labels known before `at`; training hides the target window's labels.
    cut = at - int(cfg.target_days * DAY_US) if training else at
    known = (label_ts < at) & (t < cut)
    fraud_row = known & (label == 1)
    legit_row = known & (label == 0)
    fraud_n = np.bincount(flat_loc, weights=fraud_row[flat_row].astype(float), minlength=m)
    legit_n = np.bincount(flat_loc, weights=legit_row[flat_row].astype(float), minlength=m)
    eligible = (t < min(cut, at - int(cfg.label_delay_days * DAY_US))) | known
    eligible[hi - lo :] = False  # a receipt is no transaction of its own to label
    elig_n = np.bincount(flat_loc, weights=eligible[flat_row].astype(float), minlength=m)
    # Edges: user -> entity, unique pairs.
    u = loc[:, 0]
    src_l, dst_l = [], []
    for k in range(1, len(KINDS)):
        ok = (u >= 0) & (loc[:, k] >= 0)
        src_l.append(u[ok])
        dst_l.append(loc[ok, k])
    src = np.concatenate(src_l) if src_l else np.empty(0, np.int64)
    dst = np.concatenate(dst_l) if dst_l else np.empty(0, np.int64)
    pair = np.unique(src * max(m, 1) + dst)
    su, sd = pair // max(m, 1), pair % max(m, 1)
    deg = np.bincount(su, minlength=m) + np.bincount(sd, minlength=m)
    x[:, 5] = np.log1p(deg)
    x[:, 6] = np.log1p(n)
    x[:, 7] = np.log1p(amt)
    # a transfer's label counts for its payee too, as the store counts it (`graph.queries.
    # TXN_PAYEE_LABEL`; `gnn.ringrisk.fraud_users`): not for the account, counted once already
    payee = loc[hi - lo :, 0]
    by_payee = (payee >= 0) & (a.payee[paid] != a.node[paid, 0]) & (a.label_ts[paid] < at)
    by_payee &= a.t[paid] < cut
    recv_fraud = np.bincount(payee[by_payee & (a.label[paid] == 1)], minlength=m)
    recv_legit = np.bincount(payee[by_payee & (a.label[paid] == 0)], minlength=m)
    x[:, 8] = fraud_n + recv_fraud
    x[:, 9] = legit_n + recv_legit
    x[:, 10] = np.where(n > 0, (at - first) / DAY_US, 0.0)
    x[:, 11] = np.where(n > 0, (at - last) / DAY_US, 0.0)
    is_merchant = a.node_kind[nodes[sd]] == 4 if m else np.zeros(0, dtype=bool)
    caps = np.where(is_merchant, cfg.merchant_cap, cfg.hub_cap)
    comp, ring_size = _rings(su, sd, caps, m, min_ring=cfg.min_ring)
    user_fraud = np.zeros(m, dtype=bool)
    user_fraud[u[fraud_row & (u >= 0)]] = True
    user_fraud[recv_fraud > 0] = True
    ring_rate = np.zeros(m)
    in_ring = comp >= 0
    if in_ring.any():
        users_in = in_ring & (a.node_kind[nodes] == 0)
        k = comp.max() + 1
        tot = np.bincount(comp[users_in], minlength=k)
        bad = np.bincount(comp[users_in & user_fraud], minlength=k)
        ring_rate[in_ring] = bad[comp[in_ring]] / np.maximum(tot[comp[in_ring]], 1)
    decay = np.exp2(-(at - t) / (cfg.half_life_days * DAY_US))[flat_row]
    fraud_w = np.bincount(flat_loc, weights=fraud_row[flat_row] * decay, minlength=m)
    elig_w = np.bincount(flat_loc, weights=eligible[flat_row] * decay, minlength=m)
    p0 = fraud_n.sum() / max(elig_n.sum(), 1.0) if m else 0.0
    label_risk = (fraud_w + cfg.prior_strength * p0) / (elig_w + cfg.prior_strength)
    snap = Snapshot(
        at=at,
        nodes=nodes,
        x=x.astype(np.float32),
        edge_index=np.stack([np.r_[su, sd], np.r_[sd, su]]).astype(np.int64),
        label_risk=label_risk,
        ring_size=ring_size,
        ring_fraud_rate=ring_rate,
    )
    if training:
        in_target = (t >= cut) & (np.arange(len(t)) < hi - lo)  # the receipts are no target
        tgt_fraud = in_target & (label_ts < at) & (label == 1)
        active_n = np.bincount(flat_loc, weights=in_target[flat_row].astype(float), minlength=m)
        fraud_t = np.bincount(flat_loc, weights=tgt_fraud[flat_row].astype(float), minlength=m)
        snap.target_mask = active_n > 0
        snap.target = (fraud_t / np.maximum(active_n, 1.0)).astype(np.float32)
        snap.target_weight = np.sqrt(active_n).astype(np.float32)
    return snap
