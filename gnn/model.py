"""The GCN over the user / card / device / IP / merchant graph, and how it is fitted.

Homogeneous on purpose: the graph is bipartite (every edge joins a user to one of its entities),
the node kind is a one-hot input column, and a two-layer GCN then lets a user see the other users
behind its devices/IPs/cards (user -> device -> user), which is exactly the ring signal. A
heterogeneous model (a weight set per edge type) and GraphSAGE's mean aggregation were measured
against it and not kept (docs/learning.md: better alone on one world, worse as XGBoost's input).
So: one set of weights, the kind one-hot, and a per-node skip connection so that a node keeps
its own features after neighbour averaging. It also scores the graph store's export directly.

Imbalance: weighted BCE (``pos_weight`` = negatives / positives, capped); scores are prior-corrected
afterwards (logit - ln pos_weight) so they read as probabilities again and can stand in for a
label-rate risk. Early stopping keeps the weights with the best validation PR-AUC.

Full batch up to ``full_batch_max_nodes``; beyond it, mini-batches of seed nodes with sampled
neighbourhoods, at most ``max_seeds_per_epoch`` seeds an epoch (`epoch_seeds`). PyG's
``NeighborLoader`` needs pyg-lib or torch-sparse, neither of which has a wheel for this torch,
so `sample_subgraph` is a small numpy sampler with the same fan-out semantics. Inference is
always full-graph under ``no_grad`` (cheap for two layers).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch
from scipy.special import expit
from torch import Tensor
from torch_geometric.nn import GCNConv

from gnn.graphdata import LOG_COLUMNS, NODE_FEATURES
from gnn.metrics import average_precision


def gcn_adjacency(edge_index: npt.NDArray[np.int64] | Tensor, num_nodes: int) -> Tensor:
    """Symmetric-normalised adjacency with self loops, D^-1/2 (A + I) D^-1/2, as a sparse CSR
    tensor [N, N] (row = target). GCNConv with ``normalize=False`` multiplies by it; built
    once per graph this is ~20x faster on CPU than re-normalising and scattering each call."""
    ei = edge_index.numpy() if isinstance(edge_index, Tensor) else edge_index
    n = num_nodes
    loops = np.arange(n, dtype=np.int64)
    src = np.r_[ei[0], loops]
    dst = np.r_[ei[1], loops]
    a = sp.coo_matrix((np.ones(len(src), dtype=np.float32), (dst, src)), shape=(n, n)).tocsr()
    a.sum_duplicates()
    a.data[:] = 1.0
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    a = sp.diags(inv) @ a @ sp.diags(inv)
    a = a.tocsr().astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data),
            size=(n, n),
        )


class FraudGCN(torch.nn.Module):
    """Node fraud-risk GCN.

    Args:
        in_channels: input features per node (``len(NODE_FEATURES)``).
        hidden_channels: width of the hidden layers.
        out_channels: outputs per node (1: the fraud logit).
        num_layers: GCN layers (2 reaches users sharing an entity).
        dropout: dropout between layers.
        log_columns: input columns log1p-scaled inside `forward` (raw counts and days).
    """

    mean: Tensor
    std: Tensor
    logit_shift: Tensor

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 64,
        out_channels: int = 1,
        *,
        num_layers: int = 2,
        dropout: float = 0.2,
        log_columns: Sequence[int] = LOG_COLUMNS,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.log_columns = list(log_columns)
        dims = [in_channels] + [hidden_channels] * num_layers
        self.convs = torch.nn.ModuleList(
            GCNConv(a, b, normalize=False) for a, b in itertools.pairwise(dims)
        )
        self.skips = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.head = torch.nn.Linear(hidden_channels, out_channels)
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        self.register_buffer("logit_shift", torch.zeros(()))

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()  # type: ignore[operator]
        for lin in self.skips:
            lin.reset_parameters()  # type: ignore[operator]
        self.head.reset_parameters()

    def normalise(self, x: Tensor) -> Tensor:
        """Raw features [N, in_channels] -> log-scaled, standardised [N, in_channels]."""
        if self.log_columns:
            x = x.clone()
            cols = self.log_columns
            x[:, cols] = torch.log1p(x[:, cols].clamp_min(0))
        return (x - self.mean) / self.std

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Logits [N, out_channels] for raw node features x [N, in_channels] and edge_index
        [2, E] (both directions) or its `gcn_adjacency` [N, N] (sparse, precomputed)."""
        adj = (
            edge_index if edge_index.layout != torch.strided else gcn_adjacency(edge_index, len(x))
        )
        h = self.normalise(x)
        for conv, skip in zip(self.convs, self.skips, strict=True):
            h = torch.relu(conv(h, adj) + skip(h))
            h = torch.nn.functional.dropout(h, p=self.dropout, training=self.training)
        out: Tensor = self.head(h)
        return out

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "hidden_channels": self.hidden_channels,
            "out_channels": self.out_channels,
            "num_layers": len(self.convs),
            "dropout": self.dropout,
            "log_columns": self.log_columns,
            "features": list(NODE_FEATURES),
        }


@dataclass
class GcnConfig:
    hidden_channels: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    lr: float = 0.02
    weight_decay: float = 5e-4
    epochs: int = 60
    patience: int = 10
    val_fraction: float = 0.2
    pos_weight_cap: float = 50.0
    full_batch_max_nodes: int = 1_000_000
    fanouts: tuple[int, ...] = (15, 10)
    batch_size: int = 4096
    #: Seed nodes per sampled epoch: beyond it each epoch draws every class down to its share
    #: (positives up to half), weighted back by the inverse draw rate. A world of a million
    #: labelled accounts (PaySim) took 37 s an epoch on 2 cores without it.
    max_seeds_per_epoch: int = 65_536
    seed: int = 7
    min_positives: int = 5

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitInfo:
    val_pr_auc: float
    epochs: int
    best_epoch: int
    pos_weight: float
    mode: str
    positives: int
    history: list[float] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(num_nodes: int) -> None:
    """One intra-op thread: on a shared 2-core box, OpenMP spin-waits made a small graph's fit
    ~10x slower with two threads, and sparse products gain little from a second one."""
    del num_nodes
    torch.set_num_threads(1)


def sample_subgraph(
    rowptr: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    seeds: npt.NDArray[np.int64],
    fanouts: Sequence[int],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Nodes (seeds first) and local edge_index of a sampled neighbourhood, hop by hop: each
    frontier node keeps all neighbours when it has at most `fanout`, else `fanout` drawn with
    replacement (the NeighborLoader fallback)."""
    nodes = [seeds]
    src_all, dst_all = [], []
    frontier = seeds
    for fan in fanouts:
        deg = rowptr[frontier + 1] - rowptr[frontier]
        small = deg <= fan
        f_small = frontier[small]
        d_small = deg[small]
        rep = np.repeat(f_small, d_small)
        start = np.repeat(rowptr[f_small], d_small)
        offs = np.arange(len(rep)) - np.repeat(np.cumsum(d_small) - d_small, d_small)
        nb_small = col[start + offs]
        f_big = frontier[~small]
        r = (rng.random((len(f_big), fan)) * deg[~small][:, None]).astype(np.int64)
        nb_big = col[rowptr[f_big][:, None] + r].ravel()
        dst = np.r_[rep, np.repeat(f_big, fan)]
        src = np.r_[nb_small, nb_big]
        src_all.append(src)
        dst_all.append(dst)
        frontier = np.setdiff1d(np.unique(src), np.concatenate(nodes))
        nodes.append(frontier)
    all_nodes = np.concatenate(nodes)
    order = np.argsort(all_nodes)
    src = np.concatenate(src_all)
    dst = np.concatenate(dst_all)
    pair = np.unique(np.stack([src, dst]), axis=1)
    local = order[np.searchsorted(all_nodes[order], pair)]
    return all_nodes, np.concatenate([local, local[::-1]], axis=1)


def epoch_seeds(
    train: npt.NDArray[np.int64],
    positive: npt.NDArray[np.bool_],
    cap: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.int64], Tensor | None]:
    """One epoch's seed nodes from `train` [n] (`positive` [n]): all of them up to `cap`; beyond
    it positives up to half of `cap` (more when negatives are fewer) and negatives for the rest,
    drawn without replacement, with per-node loss weights [max(train) + 1] that undo the draw
    rates (None: nothing drawn)."""
    if len(train) <= cap:
        return train, None
    pos, neg = train[positive], train[~positive]
    n_pos = min(len(pos), max(cap // 2, cap - len(neg)))
    n_neg = min(len(neg), cap - n_pos)
    scale = torch.zeros(int(train.max()) + 1)
    parts = []
    for nodes, k in ((pos, n_pos), (neg, n_neg)):
        if k == 0:
            continue
        pick = rng.choice(nodes, k, replace=False)
        scale[torch.from_numpy(pick)] = len(nodes) / k
        parts.append(pick)
    return np.concatenate(parts), scale


def _csr(
    edge_index: npt.NDArray[np.int64], n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = np.argsort(edge_index[1], kind="stable")
    col = edge_index[0][order]
    rowptr = np.r_[0, np.cumsum(np.bincount(edge_index[1], minlength=n))].astype(np.int64)
    return rowptr, col


def predict_logits(
    model: FraudGCN, x: npt.NDArray[np.float32], edge_index: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Prior-corrected logits for every node (full graph, no grad)."""
    model.eval()
    set_threads(len(x))
    with torch.no_grad():
        adj = gcn_adjacency(edge_index, len(x))
        out = model(torch.from_numpy(np.ascontiguousarray(x)), adj)
        logits = out[:, 0] - model.logit_shift
    return np.asarray(logits.double().numpy(), dtype=np.float64)


def predict_proba(
    model: FraudGCN, x: npt.NDArray[np.float32], edge_index: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    z = predict_logits(model, x, edge_index)
    return np.asarray(expit(z), dtype=np.float64)


def fit_gcn(
    x: npt.NDArray[np.float32],
    edge_index: npt.NDArray[np.int64],
    y: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    *,
    cfg: GcnConfig,
    init: FraudGCN | None = None,
    split_key: npt.NDArray[np.uint64] | None = None,
    weight: npt.NDArray[np.float32] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[FraudGCN, FitInfo]:
    """Fit on nodes in `mask`; a validation share of them is picked by `split_key` (a stable
    hash of each node's identity, so the split does not depend on node order) or by the seed.
    Warm-starts from `init` when given; `on_epoch(epoch, validation PR-AUC)` reports progress."""
    seed_everything(cfg.seed)
    set_threads(len(x))
    rng = np.random.default_rng(cfg.seed)
    if split_key is None:
        split_key = rng.permutation(len(x)).astype(np.uint64)
        split_key = split_key * np.uint64(0x9E3779B97F4A7C15)
    in_val = (split_key % np.uint64(1000)) < np.uint64(int(cfg.val_fraction * 1000))
    val, train = np.flatnonzero(mask & in_val), np.flatnonzero(mask & ~in_val)
    w = np.ones(len(x), dtype=np.float32) if weight is None else weight.astype(np.float32)
    pos = float((y[train] * w[train]).sum())
    neg = float(((1 - y[train]) * w[train]).sum())
    pos_weight = min(cfg.pos_weight_cap, neg / max(pos, 1.0))
    if init is not None:
        model = FraudGCN(**{k: v for k, v in init.config().items() if k != "features"})
        model.load_state_dict(init.state_dict())
    else:
        model = FraudGCN(
            x.shape[1], cfg.hidden_channels, num_layers=cfg.num_layers, dropout=cfg.dropout
        )
    xn = x.astype(np.float64).copy()
    xn[:, model.log_columns] = np.log1p(np.maximum(xn[:, model.log_columns], 0))
    model.mean.copy_(torch.from_numpy(xn[train].mean(axis=0)).float())
    model.std.copy_(torch.from_numpy(xn[train].std(axis=0) + 1e-6).float())
    model.logit_shift.fill_(math.log(max(pos_weight, 1.0)))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    wt = torch.from_numpy(w)

    def loss_fn(logits: Tensor, idx: Tensor, scale: Tensor | None = None) -> Tensor:
        per = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, yt[idx], pos_weight=torch.tensor(pos_weight), reduction="none"
        )
        wi = wt[idx] if scale is None else wt[idx] * scale[idx]
        return (per * wi).sum() / wi.sum()

    xt = torch.from_numpy(np.ascontiguousarray(x))
    full = len(x) <= cfg.full_batch_max_nodes
    et = gcn_adjacency(edge_index, len(x))
    yt = torch.from_numpy(y)
    rowptr, col = _csr(edge_index, len(x)) if not full else (np.empty(0, np.int64),) * 2
    best, best_state, best_epoch, history = -1.0, None, 0, []
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if full:
            opt.zero_grad()
            tr = torch.from_numpy(train)
            loss = loss_fn(model(xt, et)[tr, 0], tr)
            loss.backward()
            opt.step()
        else:
            drawn, scale = epoch_seeds(train, y[train] > 0, cfg.max_seeds_per_epoch, rng)
            perm = rng.permutation(drawn)
            for i in range(0, len(perm), cfg.batch_size):
                seeds = perm[i : i + cfg.batch_size]
                nodes, local = sample_subgraph(rowptr, col, seeds, cfg.fanouts, rng)
                opt.zero_grad()
                out = model(xt[torch.from_numpy(nodes)], torch.from_numpy(local))
                loss = loss_fn(out[: len(seeds), 0], torch.from_numpy(seeds), scale)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            score = model(xt, et)[val, 0].double().numpy()
        ap = average_precision(y[val] > 0, score) if (y[val] > 0).any() else 0.0
        ap = 0.0 if math.isnan(ap) else ap
        history.append(ap)
        if on_epoch is not None:
            on_epoch(epoch, ap)
        if ap > best:
            best, best_epoch = ap, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    info = FitInfo(
        best, epoch, best_epoch, pos_weight, "full" if full else "sampled", int(pos), history
    )
    return model, info
