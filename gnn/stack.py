"""A second model boosted on top of a first one's score (stacked generalisation).

Adding the graph model's features to the served model and refitting it from scratch moves every
split: where the new features carry nothing, the refit is another draw of the same model and
loses as often as it wins (`bench learning`, (e) - (d)). Boosting on top keeps the first model
as it is and lets the second one add trees on the new features only, starting from the first
model's margin: where validation says they add nothing, nothing is added.

The first model's scores on its own fitting rows must be out of fold (`gnn.neighbours.first_stage`):
in-fold they are overconfident, and the trees on top would learn from residuals that are not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from gnn.metrics import gain_lower_bound
from gnn.tabular import XgbConfig, train_early_stopped, weighted_params

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_EPS = 1e-7


def logit(p: F64) -> F64:
    """The margin of probabilities [n] (clipped away from 0 and 1)."""
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass
class StackedModel:
    """Trees on ``features`` added to a first model's margin; ``trees`` 0 keeps the first model."""

    booster: xgb.Booster
    features: list[str]
    trees: int

    def predict(self, base: F64, x: F64) -> F64:
        """Scores [n] from the first model's scores ``base`` [n] and the features ``x`` [n, f]."""
        if self.trees == 0:
            return np.asarray(base, dtype=np.float64)
        d = xgb.DMatrix(x, feature_names=self.features, base_margin=logit(base))
        out = self.booster.predict(d, iteration_range=(0, self.trees))
        return np.asarray(out, dtype=np.float64)


def fit_on_top(
    base_fit: F64,
    x_fit: F64,
    y_fit: I64,
    *,
    base_val: F64,
    x_val: F64,
    y_val: I64,
    features: Sequence[str],
    seed: int,
    cfg: XgbConfig | None = None,
) -> StackedModel:
    """Boost trees on ``x_fit`` [n, f] from the margin of ``base_fit`` [n] (out of fold), with
    the first model's class weighting. Validation rows are dealt alternately into two halves: the
    first early-stops on PR-AUC, the second decides whether the trees are kept at all, only when
    their gain there is above 0 at the bootstrap's 5% quantile. Choosing the number of trees and
    judging them on the same rows would keep trees that fit the window's noise; halves in time
    order would leave the judge the late rows, whose labels have mostly not arrived."""
    cfg = cfg or XgbConfig()
    params = weighted_params(cfg, y_fit, seed=seed)
    names = list(features)
    stop, judge = slice(0, None, 2), slice(1, None, 2)
    dfit = xgb.DMatrix(x_fit, label=y_fit, feature_names=names, base_margin=logit(base_fit))
    dstop = xgb.DMatrix(
        x_val[stop], label=y_val[stop], feature_names=names, base_margin=logit(base_val[stop])
    )
    booster, best = train_early_stopped(params, dfit, dstop, cfg)
    model = StackedModel(booster, names, best + 1)
    top = model.predict(base_val[judge], x_val[judge])
    if gain_lower_bound(y_val[judge], top, base_val[judge], seed=seed) <= 0:
        model.trees = 0
    return model
