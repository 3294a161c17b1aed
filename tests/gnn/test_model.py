"""The GCN on tiny hand-built graphs: shapes, reset, determinism, a planted pattern, sampling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnn.graphdata import NODE_FEATURES
from gnn.model import (
    FraudGCN,
    GcnConfig,
    epoch_seeds,
    fit_gcn,
    gcn_adjacency,
    predict_proba,
    sample_subgraph,
)
from gnn.service import ring_score

F = len(NODE_FEATURES)


def planted(seed: int = 0, users: int = 120, devices: int = 40):
    """Users and devices; devices 0-4 are ring devices shared by fraudulent users. User features
    are identical noise; only the shared device (and its labelled fraud count) tells them apart."""
    rng = np.random.default_rng(seed)
    n = users + devices
    x = np.zeros((n, F), dtype=np.float32)
    x[:users, 0] = 1
    x[users:, 2] = 1
    x[:, 6] = rng.random(n)
    src, dst = [], []
    y = np.zeros(n, dtype=np.float32)
    for u in range(users):
        fraud = u % 6 == 0
        d = int(rng.integers(0, 5) if fraud else rng.integers(5, devices))
        src.append(u)
        dst.append(users + d)
        y[u] = float(fraud)
    for d in range(5):
        x[users + d, 8] = 3.0  # known fraud on ring devices
    e = np.array([src + dst, dst + src], dtype=np.int64)
    mask = np.zeros(n, dtype=bool)
    mask[:users] = True
    return x, e, y, mask


def test_shapes_and_reset_parameters() -> None:
    x, e, _, _ = planted()
    model = FraudGCN(F, hidden_channels=8)
    out = model(torch.from_numpy(x), torch.from_numpy(e))
    assert out.shape == (len(x), 1)
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    after = list(model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    model.eval()
    adj = gcn_adjacency(e, len(x))
    assert torch.allclose(
        model(torch.from_numpy(x), adj), model(torch.from_numpy(x), torch.from_numpy(e))
    )


def test_learns_planted_pattern_and_is_deterministic() -> None:
    x, e, y, mask = planted()
    cfg = GcnConfig(hidden_channels=16, epochs=80, patience=80, seed=3, lr=0.03)
    model, info = fit_gcn(x, e, y, mask, cfg=cfg)
    p = predict_proba(model, x, e)[:120]
    assert info.val_pr_auc > 0.9
    assert p[y[:120] == 1].min() > p[y[:120] == 0].max()
    model2, _ = fit_gcn(x, e, y, mask, cfg=cfg)
    np.testing.assert_allclose(predict_proba(model2, x, e), predict_proba(model, x, e), rtol=1e-5)


def test_without_the_shared_device_signal_it_cannot_learn() -> None:
    """Control: cut the edges, and the planted users are indistinguishable (AP near the base)."""
    x, _e, y, mask = planted()
    x[:, 8] = 0
    empty = np.zeros((2, 0), dtype=np.int64)
    _, info = fit_gcn(x, empty, y, mask, cfg=GcnConfig(hidden_channels=8, epochs=30, seed=1))
    assert info.val_pr_auc < 0.6


def test_sampled_training_beyond_the_full_batch_size() -> None:
    x, e, y, mask = planted()
    cfg = GcnConfig(
        hidden_channels=16,
        epochs=60,
        patience=60,
        full_batch_max_nodes=10,
        batch_size=32,
        seed=3,
        lr=0.03,
    )
    _model, info = fit_gcn(x, e, y, mask, cfg=cfg)
    assert info.mode == "sampled"
    assert info.val_pr_auc > 0.9
    # 40 seeds an epoch of the ~96 training users, drawn and weighted back: it still learns
    epochs: list[int] = []
    capped = replace(cfg, max_seeds_per_epoch=40)
    _model, info = fit_gcn(x, e, y, mask, cfg=capped, on_epoch=lambda k, _ap: epochs.append(k))
    assert info.val_pr_auc > 0.9 and epochs == list(range(1, info.epochs + 1))


@settings(max_examples=60)
@given(st.integers(0, 300), st.integers(0, 300), st.integers(2, 200), st.integers(0, 2**32))
def test_epoch_seeds_draw_within_the_cap_and_weigh_each_class_back_to_its_size(
    positives: int, negatives: int, cap: int, seed: int
) -> None:
    train = np.random.default_rng(seed).permutation(1000)[: positives + negatives]
    positive = np.arange(len(train)) < positives
    drawn, scale = epoch_seeds(train, positive, cap, np.random.default_rng(seed))
    assert len(set(drawn.tolist())) == len(drawn) and set(drawn.tolist()) <= set(train.tolist())
    if len(train) <= cap:
        assert scale is None and drawn.tolist() == train.tolist()
        return
    assert scale is not None and len(drawn) == min(cap, len(train))
    for members in (train[positive], train[~positive]):
        picked = np.intersect1d(drawn, members)
        assert len(picked) > 0 or len(members) == 0
        assert float(scale[torch.from_numpy(picked)].sum()) == pytest.approx(len(members))


def test_sample_subgraph_fanout() -> None:
    # star: node 0 linked to 1..9
    e = np.array([[0] * 9 + list(range(1, 10)), list(range(1, 10)) + [0] * 9], dtype=np.int64)
    order = np.argsort(e[1], kind="stable")
    rowptr = np.r_[0, np.cumsum(np.bincount(e[1], minlength=10))].astype(np.int64)
    col = e[0][order]
    nodes, local = sample_subgraph(rowptr, col, np.array([0]), [3], np.random.default_rng(0))
    assert nodes[0] == 0 and 2 <= len(nodes) <= 4
    assert local.shape[0] == 2 and local.max() < len(nodes)


@pytest.mark.parametrize(
    ("risk", "rate", "want"), [([0.5], 0.0, 0.5), ([0.5, 0.2], 0.5, 0.75), ([], 0.3, 0.3)]
)
def test_ring_score(risk: list[float], rate: float, want: float) -> None:
    assert ring_score(risk, rate) == pytest.approx(want)
