"""Label propagation features on tiny hand-built graphs, and the hedges' pure parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gnn import metrics as m
from gnn.evaluate import flagged
from gnn.graphdata import NODE_FEATURES, Snapshot
from gnn.hedge import (
    HEDGES,
    LABEL_DERIVED,
    blend,
    blended_model,
    check_hedge,
    graph_columns,
    guard,
    rising,
    with_dropout,
    without,
)
from gnn.labelprop import FRAUD_N, FraudLabelPropagation, propagate
from gnn.tabular import XgbConfig, XgbModel, fit_xgb


def _edges(pairs: list[tuple[int, int]]) -> torch.Tensor:
    a = torch.tensor(pairs, dtype=torch.long).T
    return torch.cat([a, a.flip(0)], dim=1)


def test_fraud_reaches_a_user_through_a_shared_device_only() -> None:
    # users 0-3; device 4 shared by 0 and 1; device 5 used by 2 alone; 3 is isolated
    ei = _edges([(0, 4), (1, 4), (2, 5)])
    seed = torch.tensor([1.0, 0, 0, 0, 0, 0])
    out = FraudLabelPropagation(num_layers=4, alpha=0.8)(seed, ei)
    assert out.shape == (6,)
    assert out[1] > 0 and out[4] > 0
    assert out[2] == 0 and out[3] == 0 and out[5] == 0
    assert out[0] > out[1]  # the labelled user keeps its own seed


def test_a_hub_passes_nothing() -> None:
    # a merchant (node 10) with 9 users; user 0 labelled
    ei = _edges([(u, 10) for u in range(9)])
    seed = torch.zeros(11)
    seed[0] = 1.0
    capped = FraudLabelPropagation(hub_cap=5)(seed, ei)
    assert torch.all(capped[1:] == 0)
    open_ = FraudLabelPropagation(hub_cap=50)(seed, ei)
    assert torch.all(open_[1:9] > 0)


def test_propagate_seeds_labelled_users_of_a_snapshot() -> None:
    x = np.zeros((3, len(NODE_FEATURES)), dtype=np.float32)
    x[:2, 0] = 1  # two users
    x[2, 2] = 1  # a device
    x[0, FRAUD_N] = 1.0  # user 0 has a known fraud
    x[2, FRAUD_N] = 5.0  # the device's count is not a seed (only users are)
    ei = np.array([[0, 1, 2, 2], [2, 2, 0, 1]], dtype=np.int64)
    snap = Snapshot(
        at=0, nodes=np.arange(3), x=x, edge_index=ei, label_risk=np.zeros(3),
        ring_size=np.zeros(3), ring_fraud_rate=np.zeros(3),
    )  # fmt: skip
    out = propagate(snap)
    assert out.shape == (3,)
    assert out[0] > out[1] > 0 and out[2] > 0
    x[0, FRAUD_N] = 0.0
    assert np.all(propagate(snap) == 0)


def test_saturated_scores_are_not_flagged_by_the_flag_nothing_threshold() -> None:
    s = np.array([1.0, 1.0, 0.3])
    assert not flagged(s, 1.0).any()
    assert flagged(s, 0.3).tolist() == [True, True, True]


def test_dropout_repeats_rows_with_graph_columns_missing() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    xx, yy = with_dropout(x, np.array([0, 1]), np.array([1, 2], dtype=np.intp))
    assert xx.shape == (4, 3) and yy.tolist() == [0, 1, 0, 1]
    assert np.array_equal(xx[:2], x)
    assert np.isnan(xx[2:, 1:]).all() and xx[2:, 0].tolist() == [0.0, 3.0]


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20),
    st.floats(0.0, 1.0),
)
def test_blend_stays_between_its_two_models(p: list[float], w: float) -> None:
    a = np.asarray(p)
    b = 1.0 - a
    out = blend(a, b, weight=w)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    assert np.all(out >= np.clip(lo, 1e-7, 1) - 1e-9) and np.all(
        out <= np.clip(hi, 0, 1 - 1e-7) + 1e-9
    )


@given(st.text(max_size=12))
def test_hedge_names_are_checked(name: str) -> None:
    if name in HEDGES:
        assert check_hedge(name) == name
    else:
        with pytest.raises(ValueError, match="hedge must be one of"):
            check_hedge(name)


def test_rising_takes_risk_rates_not_ages() -> None:
    names = ["amount", "ring_fraud_rate", "user_risk", "merchant_fraud_first_age_days", "ring_size"]
    graph = names[1:]
    assert rising(names, graph) == ("ring_fraud_rate", "user_risk")


def test_monotone_constraint_keeps_the_score_rising() -> None:
    # the label falls with the feature; constrained, the model cannot learn that
    rng = np.random.default_rng(0)
    x = rng.random((2000, 1))
    y = (rng.random(2000) < 0.5 * (1 - x[:, 0])).astype(np.int64)
    grid = np.linspace(0, 1, 50).reshape(-1, 1)
    cfg = XgbConfig(n_estimators=30, max_bin=64, monotone=("f",))
    s = fit_xgb(x, y, None, None, features=["f"], seed=0, cfg=cfg).predict(grid)
    assert np.all(np.diff(s) >= -1e-9)
    free = fit_xgb(x, y, None, None, features=["f"], seed=0, cfg=XgbConfig(n_estimators=30))
    assert np.any(np.diff(free.predict(grid)) < 0)


def test_guard_serves_the_graph_model_only_for_a_gain_beyond_luck() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(np.int64)
    tabular = rng.random(2000) + 0.3 * y
    better = tabular + 0.5 * y * (rng.random(2000) < 0.6)  # most frauds rise: a real gain
    assert guard(y, graph=better, tabular=tabular, seed=1) == "graph"
    assert guard(y, graph=tabular, tabular=better, seed=1) == "tabular"
    assert guard(y, graph=tabular, tabular=tabular, seed=1) == "tabular"  # a tie: the simpler
    lucky = tabular.copy()
    lucky[np.flatnonzero(y)[np.argmin(tabular[y == 1])]] = 9.0  # one fraud rises to the top
    assert m.average_precision(y, lucky) > m.average_precision(y, tabular)
    assert guard(y, graph=lucky, tabular=tabular, seed=1) == "tabular"
    none = np.zeros(2000, dtype=np.int64)
    assert guard(none, graph=better, tabular=tabular, seed=1) == "tabular"


def test_a_model_fitted_without_graph_columns_never_reads_them() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((1500, 3))
    y = ((x[:, 0] + x[:, 2]) > 1.2).astype(np.int64)
    cols = graph_columns(["a", "ring_fraud_rate", "user_risk"], LABEL_DERIVED)
    assert cols.tolist() == [1, 2]
    cfg = XgbConfig(n_estimators=20, max_bin=64)
    model = fit_xgb(without(x, cols), y, None, None, features=["a", "b", "c"], seed=0, cfg=cfg)
    assert np.array_equal(model.predict(x), model.predict(without(x, cols)))


def test_a_blend_served_as_one_booster_scores_as_the_two_models_blended(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((3000, 3))
    y = ((x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.random(3000)) > 1.1).astype(np.int64)
    x[rng.random(3000) < 0.1, 2] = np.nan
    names = ["amount", "velocity", "user_risk"]
    cfg = XgbConfig(n_estimators=60, max_bin=64, early_stopping_rounds=5)
    graph = fit_xgb(x[:2000], y[:2000], x[2000:], y[2000:], features=names, seed=0, cfg=cfg)
    tab_x = without(x, np.asarray([2]))
    tab = fit_xgb(tab_x[:2000], y[:2000], tab_x[2000:], y[2000:], features=names, seed=1, cfg=cfg)
    one = blended_model(graph, tab)
    want = blend(tab.predict(x), graph.predict(x))
    assert np.allclose(one.predict(x), want, atol=1e-5)
    one.save(tmp_path / "xgb.json")  # what the registry keeps and the scorer reads back
    assert np.allclose(XgbModel.load(tmp_path / "xgb.json").predict(x), want, atol=1e-5)
    assert not np.allclose(want, graph.predict(x), atol=1e-3)  # it is not one model alone
    from realtime.scorer import _walker

    walker = _walker(one.booster, 3)  # the API's tree walker scores it, explanations included
    assert walker is not None and walker.base_margin is not None
    with pytest.raises(ValueError, match="same features"):
        blended_model(graph, fit_xgb(x, y, None, None, features=["a", "b", "c"], seed=0, cfg=cfg))
