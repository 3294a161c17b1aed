"""The scorer: the numpy walker reproduces XGBoost (leaves, scores, Saabas contributions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from fraudring.registry import ModelRegistry
from realtime.features import FEATURE_NAMES
from realtime.scorer import ModelRefused, load_model
from tests.support.realtime import tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("scorer")
    return root, tiny_model(root, trees=60)


def rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2, size=(n, len(FEATURE_NAMES))).astype(np.float32)
    x[:, 0] = rng.uniform(1, 5000, size=n)
    x[rng.random(x.shape) < 0.25] = np.nan
    return x


def test_walker_matches_xgboost_scores_and_approx_contribs(model_dir: tuple[Path, str]) -> None:
    root, version = model_dir
    m = load_model(ModelRegistry(root / "models"), version)
    assert m.walker is not None and m.walker.base_margin is not None
    x = rows(200, seed=3)
    dm = xgb.DMatrix(x, feature_names=list(FEATURE_NAMES))
    ref_p = m.booster.inplace_predict(x)
    ref_c = m.booster.predict(dm, pred_contribs=True, approx_contribs=True)[:, :-1]
    for i in range(len(x)):
        p, top = m.score(x[i : i + 1])
        assert p == pytest.approx(float(ref_p[i]), abs=1e-6)
        assert m.predict(x[i : i + 1]) == pytest.approx(float(ref_p[i]), abs=1e-7)
        for name, value, contribution in top:
            j = FEATURE_NAMES.index(name)
            assert contribution == pytest.approx(float(ref_c[i, j]), abs=1e-4)
            assert value == x[i, j] or (np.isnan(value) and np.isnan(x[i, j]))
        assert abs(top[0][2]) == pytest.approx(np.abs(ref_c[i]).max(), abs=1e-4)


def test_manifest_features_must_be_computed_online(tmp_path: Path) -> None:
    version = tiny_model(tmp_path, features=("amount", "no_such_feature"), promote=False)
    with pytest.raises(ModelRefused, match="no_such_feature"):
        load_model(ModelRegistry(tmp_path / "models"), version)


def test_a_subset_of_features_in_another_order_is_served(tmp_path: Path) -> None:
    feats = ("user_n_1h", "amount", "device_risk")
    version = tiny_model(tmp_path, features=feats, promote=False)
    m = load_model(ModelRegistry(tmp_path / "models"), version)
    full = rows(1, seed=1)
    p, top = m.score(full)
    sub = full[:, [FEATURE_NAMES.index(f) for f in feats]]
    assert p == pytest.approx(float(m.booster.inplace_predict(sub)[0]), abs=1e-6)
    assert {t[0] for t in top} <= set(feats)
