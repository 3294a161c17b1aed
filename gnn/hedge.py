"""Hedges for a model that reads graph features, against a world that stops looking like its
training data (a fraud burst where none was known, every device new).

Graph and label-derived features (ring risk, the merchant's known fraud, the graph model's
scores) say where fraud was. When it moves, a model that leaned on them ranks the new fraud
below what the transaction's own history says. Three hedges, all fitted on training data only:

- ``dropout``: every fit row twice, once with the graph features missing, so the trees also
  learn to rank from the transaction's own history;
- ``monotone``: the score may only rise with a graph feature's risk, so "no known fraud here"
  cannot be learned as evidence of innocence beyond what the tabular features say;
- ``blend``: the mean logit of the tabular model and the graph model.

And a guard for the nightly job (`gnn.pipeline`): it also fits the tabular model in the served
contract (graph columns missing in training, so its trees never read them) and registers that
one instead when it ranks the newest labels (the validation window) better: once a shift's
labels arrive, the graph model has to earn its place again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit

from gnn.entitystats import MERCHANT_FEATURES
from gnn.features import GRAPH_FEATURES

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


def guard(*, graph_ap: float, tabular_ap: float) -> str:
    """ "tabular" when the tabular model ranks the newest labels strictly better, else "graph"
    (a NaN figure never wins)."""
    if math.isnan(tabular_ap):
        return "graph"
    return "tabular" if math.isnan(graph_ap) or tabular_ap > graph_ap else "graph"


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
