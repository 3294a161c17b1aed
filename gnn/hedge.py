"""Hedges for a model that reads graph features, against a world that stops looking like its
training data (a fraud burst where none was known, every device new).

Graph and label-derived features (ring risk, the merchant's known fraud, the graph model's
scores) say where fraud was. When it moves, a model that leaned on them ranks the new fraud
below what the transaction's own history says. Three hedges, all fitted on training data only:

- ``dropout``: every fit row twice, once with the graph features missing, so the trees also
  learn to rank from the transaction's own history;
- ``monotone``: the score may only rise with a graph feature's risk, so "no known fraud here"
  cannot be learned as evidence of innocence beyond what the tabular features say;
- ``blend``: the mean logit of the tabular model and the graph model; served as one booster
  holding both forests with halved leaves (`blended_model`), so the scorer reads one model.

And a guard for the nightly job (`gnn.pipeline`): it also fits the tabular model in the served
contract (graph columns missing in training, so its trees never read them) and registers that
one instead unless the graph model ranks the newest labels (the validation window) better
beyond luck: once a shift's labels arrive, the graph model has to earn its place again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from scipy.special import expit, logit

from gnn.entitystats import MERCHANT_FEATURES
from gnn.features import GRAPH_FEATURES
from gnn.metrics import gain_lower_bound
from gnn.tabular import XgbModel

#: What other entities' labels and the graph say (ring risk, the merchant's known fraud): what
#: model (d) adds to (b), and what the hedges guard.
LABEL_DERIVED: Final[tuple[str, ...]] = tuple(GRAPH_FEATURES) + tuple(MERCHANT_FEATURES)
HEDGES: Final = ("none", "dropout", "monotone", "blend", "guard")
#: Graph features whose risk only rises with their value (ages and counts of rows are not).
RISING_SUFFIXES: Final = (
    "_risk",
    "_fraud_rate",
    "fraud_rate_1d",
    "fraud_rate_7d",
    "fraud_rate_28d",
    "cpp_frauds_28d",
    "cpp_rate_28d",
)


def check_hedge(name: str) -> str:
    """The hedge's name, or ValueError naming the valid ones."""
    if name not in HEDGES:
        raise ValueError(f"hedge must be one of {', '.join(HEDGES)}, got {name!r}")
    return name


def rising(features: Sequence[str], graph: Sequence[str]) -> tuple[str, ...]:
    """The graph features among `features` whose risk rises with their value."""
    g = set(graph)
    return tuple(f for f in features if f in g and f.endswith(RISING_SUFFIXES))


def graph_columns(features: Sequence[str], graph: Sequence[str]) -> npt.NDArray[np.intp]:
    """Positions of the graph features among `features`."""
    g = set(graph)
    return np.asarray([i for i, f in enumerate(features) if f in g], dtype=np.intp)


def without(x: npt.NDArray[np.float64], cols: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """A copy of `x` with `cols` missing (NaN)."""
    out = x.copy()
    out[:, cols] = np.nan
    return out


def guard(y: npt.ArrayLike, *, graph: npt.ArrayLike, tabular: npt.ArrayLike, seed: int) -> str:
    """ "graph" when the graph model's PR-AUC gain over the tabular model on the newest labels
    `y` [n] (their scores [n]) is above 0 at the bootstrap's 5% quantile, else "tabular": the
    window's few hundred frauds rank either one first by luck as often as not."""
    return "graph" if gain_lower_bound(y, graph, tabular, seed=seed) > 0 else "tabular"


def with_dropout(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], cols: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Rows [2n, f]: `x` as is, then a copy with `cols` missing (NaN); labels repeated."""
    return np.vstack([x, without(x, cols)]), np.concatenate([y, y])


def blend(
    tabular: npt.NDArray[np.float64], graph: npt.NDArray[np.float64], *, weight: float = 0.5
) -> npt.NDArray[np.float64]:
    """Probability from the weighted mean logit (``weight`` on the graph model)."""
    eps = 1e-7
    lt = logit(np.clip(tabular, eps, 1 - eps))
    lg = logit(np.clip(graph, eps, 1 - eps))
    out: npt.NDArray[np.float64] = expit((1 - weight) * lt + weight * lg)
    return out


def _forest(model: XgbModel) -> dict[str, Any]:
    """The booster's JSON, cut at its best iteration."""
    booster = model.booster[: model.best_iteration + 1]
    out: dict[str, Any] = json.loads(booster.save_raw("json"))
    return out


def _base_margin(learner: dict[str, Any]) -> float:
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    return float(logit(min(max(float(raw), 1e-7), 1 - 1e-7)))


def blended_model(graph: XgbModel, tabular: XgbModel, *, weight: float = 0.5) -> XgbModel:
    """One binary:logistic booster whose margin is ``weight`` * the graph model's + (1 -
    ``weight``) * the tabular model's: both forests, each leaf scaled by its model's weight, and
    the base score moved to the weighted base margin. Both must read the same features."""
    if graph.features != tabular.features:
        raise ValueError("a blend needs both models on the same features")
    g, t = _forest(graph), _forest(tabular)
    trees: list[dict[str, Any]] = []
    for doc, w in ((g, weight), (t, 1.0 - weight)):
        for tree in doc["learner"]["gradient_booster"]["model"]["trees"]:
            leaf = np.asarray(tree["left_children"]) == -1
            cond = np.asarray(tree["split_conditions"], dtype=np.float64)
            tree["split_conditions"] = np.where(leaf, cond * w, cond).tolist()
            tree["base_weights"] = [v * w for v in tree["base_weights"]]
            tree["id"] = len(trees)
            trees.append(tree)
    margin = weight * _base_margin(g["learner"]) + (1 - weight) * _base_margin(t["learner"])
    learner = g["learner"]
    learner["learner_model_param"]["base_score"] = f"[{float(expit(margin)):.9E}]"
    model = learner["gradient_booster"]["model"]
    model["trees"] = trees
    model["tree_info"] = [0] * len(trees)
    model["iteration_indptr"] = list(range(len(trees) + 1))
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(g).encode()))
    best = len(trees) - 1
    booster.set_attr(best_iteration=str(best), features=json.dumps(graph.features))
    return XgbModel(booster, list(graph.features), best, float("nan"), dict(graph.params))
