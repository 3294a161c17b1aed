"""Boosting on top of a first model's score (gnn.stack), on small hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.metrics import average_precision
from gnn.stack import StackedModel, fit_on_top, logit
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


def _fit_and_test(noise: bool) -> tuple[StackedModel, np.ndarray, np.ndarray, np.ndarray]:
    """Fit on world 1, validate on world 2; (model, test base, test features, test labels)."""
    (bf, xf, yf, nf), (bv, xv, yv, nv), (bt, xt, yt, nt) = (_data(s) for s in (1, 2, 3))
    if noise:
        xf, xv, xt = nf, nv, nt
    top = fit_on_top(
        bf, xf, yf, base_val=bv, x_val=xv, y_val=yv, features=["a", "b"], seed=0, cfg=CFG
    )
    return top, bt, xt, yt


def test_a_feature_the_first_model_lacks_adds_trees_and_ranks_better() -> None:
    top, base_t, x_t, y_t = _fit_and_test(noise=False)
    assert top.trees > 0
    assert average_precision(y_t, top.predict(base_t, x_t)) > average_precision(y_t, base_t) + 0.2


def test_noise_adds_nothing_and_leaves_the_first_models_scores_as_they_were() -> None:
    top, base_t, x_t, _ = _fit_and_test(noise=True)
    assert top.trees == 0
    assert np.array_equal(top.predict(base_t, x_t), base_t)
