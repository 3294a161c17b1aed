"""Known fraud spread over the user-entity graph: the graph model's features for XGBoost.

The GCN learns from a few hundred labelled nodes per snapshot, and each refit changes what its
score means, so XGBoost trained on last week's scores misreads this week's. Label propagation
(Zhu & Ghahramani; PyG's ``LabelPropagation``) has no weights to refit: known fraud flows from
labelled users through the devices, IPs, cards and merchants they used to the users behind those,
and means the same every day. It reaches a relay member two entities away from a labelled one,
which the ring rule's evidence threshold may leave out. Entities with more than ``hub_cap``
users (a chain store, a carrier IP) pass nothing on: they tie strangers.

Fed to XGBoost per entity of the transaction (``LP_FEATURES``), beside the GCN's per-entity
probability (``GCN_FEATURES``), as NVIDIA's fraud blueprint feeds GraphSAGE embeddings.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LabelPropagation

from gnn.graphdata import KINDS, NODE_FEATURES, Snapshot

#: Per transaction: the propagated fraud of its user, card, device, IP and merchant.
LP_FEATURES: Final[tuple[str, ...]] = tuple(f"lp_{k}" for k in KINDS)
#: Per transaction: the GCN's fraud probability of each of its entities.
GCN_FEATURES: Final[tuple[str, ...]] = tuple(f"gcn_{k}" for k in KINDS)
FRAUD_N: Final = NODE_FEATURES.index("fraud_txn_n")


class FraudLabelPropagation(torch.nn.Module):
    """Label propagation over a bipartite user-entity graph with a hub cap.

    Args:
        num_layers: propagation steps (4: user -> entity -> user -> entity -> user).
        alpha: share of a node's score that comes from its neighbours each step (the rest is
            its own seed).
        hub_cap: nodes with more neighbours than this neither send nor receive.
    """

    def __init__(self, num_layers: int = 4, alpha: float = 0.8, *, hub_cap: int = 50) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.alpha = alpha
        self.hub_cap = hub_cap
        self.prop = LabelPropagation(num_layers, alpha)

    def reset_parameters(self) -> None:
        """Nothing to reset: the model has no weights."""

    def forward(self, seed: Tensor, edge_index: Tensor) -> Tensor:
        """Scores [N] in [0, 1] from seeds [N] (1 where a node has known fraud) and edge_index
        [2, E] (both directions)."""
        n = seed.shape[0]
        deg = torch.bincount(edge_index[0], minlength=n)
        keep = (deg[edge_index[0]] <= self.hub_cap) & (deg[edge_index[1]] <= self.hub_cap)
        ei = edge_index[:, keep]
        ei, w = gcn_norm(ei, num_nodes=n, add_self_loops=False)
        out: Tensor = self.prop(seed.view(-1, 1).float(), ei, edge_weight=w)
        return out.view(-1)


def propagate(
    snap: Snapshot, model: FraudLabelPropagation | None = None
) -> npt.NDArray[np.float64]:
    """Propagated known fraud of every node of a snapshot [m]: users with a fraud label known
    before the snapshot's moment are the seeds."""
    model = model or FraudLabelPropagation()
    if len(snap.nodes) == 0:
        return np.zeros(0)
    seed = torch.from_numpy(((snap.x[:, 0] == 1) & (snap.x[:, FRAUD_N] > 0)).astype(np.float32))
    with torch.no_grad():
        out: Tensor = model(seed, torch.from_numpy(snap.edge_index))
    scores: npt.NDArray[np.float64] = out.numpy().astype(np.float64)
    return scores
