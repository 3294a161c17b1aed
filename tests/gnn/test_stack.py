"""Boosting on top of a first model's score (gnn.stack), on small hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.metrics import average_precision
from gnn.stack import fit_on_top, logit
from gnn.tabular import XgbConfig

CFG = XgbConfig(n_estimators=60, early_stopping_rounds=10, max_bin=64)


def _data(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fraud is either of two causes; the first model sees one of them, ``x[:, 0]`` the other,
    ``x[:, 1]`` is noise."""
    rng = np.random.default_rng(seed)
    seen = rng.random(n) < 0.03
    unseen = rng.random(n) < 0.03
    y = (seen | unseen).astype(np.int64)
    base = np.where(seen, 0.8, 0.05) + rng.normal(0, 0.02, n)
    x = np.column_stack([unseen + rng.normal(0, 0.3, n), rng.normal(0, 1, n)])
    return np.clip(base, 0.001, 0.999), x, y, np.column_stack([x[:, 1], x[:, 1]])


def test_logit_inverts_the_sigmoid_and_stays_finite_at_0_and_1() -> None:
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    m = logit(p)
    assert np.isfinite(m).all()
    assert 1 / (1 + np.exp(-m[1:4])) == pytest.approx(p[1:4])


def test_a_feature_the_first_model_lacks_adds_trees_and_ranks_better() -> None:
    base_f, x_f, y_f, _ = _data(1)
    base_v, x_v, y_v, _ = _data(2)
    base_t, x_t, y_t, _ = _data(3)
    top = fit_on_top(
        base_f,
        x_f,
        y_f,
        base_val=base_v,
        x_val=x_v,
        y_val=y_v,
        features=["a", "b"],
        seed=0,
        cfg=CFG,
    )
    assert top.trees > 0
    assert average_precision(y_t, top.predict(base_t, x_t)) > average_precision(y_t, base_t) + 0.2


def test_noise_adds_nothing_and_leaves_the_first_models_scores_as_they_were() -> None:
    base_f, _, y_f, noise_f = _data(1)
    base_v, _, y_v, noise_v = _data(2)
    base_t, _, _, noise_t = _data(3)
    top = fit_on_top(
        base_f,
        noise_f,
        y_f,
        base_val=base_v,
        x_val=noise_v,
        y_val=y_v,
        features=["n", "m"],
        seed=0,
        cfg=CFG,
    )
    assert top.trees == 0
    assert np.array_equal(top.predict(base_t, noise_t), base_t)
