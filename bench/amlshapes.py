"""AMLSim's other laundering typologies on a public sample's own transfers.

The AMLSim samples hold cycles and fan-ins only. AMLSim also plants scatter-gather,
gather-scatter, bipartite, stack and random patterns; to score rings of those shapes on real
AMLSim background, each laundering pattern of a sample (found as `world.amlsim` finds it: the
laundering accounts joined by pairs that transfer at least twice) keeps its accounts and its
transfers (times, amounts, how many), and only who pays whom is rewired to the new shape. Every
other transfer is left as it was. Nothing is chosen on these worlds; `bench rings` scores them
with the settings chosen on the synthetic validation worlds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SHAPES = ("scatter_gather", "gather_scatter", "bipartite", "stack", "random")
Edge = tuple[int, int]


def shape_edges(shape: str, members: list[int], rng: np.random.Generator) -> list[Edge]:
    """Payer -> payee pairs of one pattern of `shape` over `members` (4 or more), AMLSim's
    meaning: scatter-gather one origin through intermediaries to one beneficiary,
    gather-scatter many payers into one hub that pays many, bipartite one half paying the
    other, stack three such layers, random a random connected graph."""
    m, k = members, len(members)
    if shape == "scatter_gather":
        mid = m[1:-1]
        return [(m[0], x) for x in mid] + [(x, m[-1]) for x in mid]
    if shape == "gather_scatter":
        hub, half = m[k // 2], k // 2
        return [(x, hub) for x in m[:half]] + [(hub, x) for x in m[half + 1 :]]
    if shape == "bipartite":
        return [(x, y) for x in m[: k // 2] for y in m[k // 2 :]]
    if shape == "stack":
        a, b, c = m[: k // 3], m[k // 3 : 2 * k // 3], m[2 * k // 3 :]
        return [(x, y) for x in a for y in b] + [(x, y) for x in b for y in c]
    if shape == "random":
        tree = []
        for i in range(1, k):
            j = m[int(rng.integers(0, i))]
            tree.append((m[i], j) if rng.random() < 0.5 else (j, m[i]))
        extra = [rng.choice(m, 2, replace=False) for _ in range(k // 2)]
        return tree + [(int(a), int(b)) for a, b in extra]
    raise ValueError(f"shape: one of {', '.join(SHAPES)}, not {shape!r}")


def _spanning_first(edges: list[Edge], n_transfers: int) -> list[Edge]:
    """Edges that reach a new member first, cut so each kept pair transfers at least twice
    (a pattern's pairs repeat, as the loader requires) where the transfers allow."""
    seen: set[int] = set()
    first: list[Edge] = []
    rest: list[Edge] = []
    for a, b in edges:
        (rest if {a, b} <= seen else first).append((a, b))
        seen |= {a, b}
    return (first + rest)[: max(len(first), n_transfers // 2)]


def rewire(src: Path, dst: Path, *, shape: str, seed: int) -> Path:
    """A copy of the AMLSim sample `src` at `dst` with every pattern rewired to `shape`."""
    nodes = pd.read_csv(src / "nodes.csv")
    t = pd.read_csv(src / "transactions.csv")
    bad = nodes.loc[nodes["isFraud"] == 1, "nodeid"].to_numpy()
    s, d = t["sourceNodeId"].to_numpy().copy(), t["targetNodeId"].to_numpy().copy()
    inside = np.isin(s, bad) & np.isin(d, bad)
    pair = pd.Series(np.minimum(s, d) * (1 << 32) + np.maximum(s, d))
    pattern = inside & (pair.map(pair[inside].value_counts()).fillna(0).to_numpy() >= 2)
    n = int(max(nodes["nodeid"].max(), s.max(), d.max())) + 1
    graph = coo_matrix((np.ones(int(pattern.sum())), (s[pattern], d[pattern])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(pattern)
    rows = rows[np.argsort(t["time"].to_numpy()[rows], kind="stable")]
    by_comp: dict[int, list[int]] = {}
    for r in rows:
        by_comp.setdefault(int(comp[s[r]]), []).append(int(r))
    for c, idx in sorted(by_comp.items()):
        members = [int(x) for x in rng.permutation(np.flatnonzero(comp == c))]
        if len(members) >= 4:
            edges = _spanning_first(shape_edges(shape, members, rng), len(idx))
        else:  # too small for the shape: a cycle
            edges = [(members[j], members[(j + 1) % len(members)]) for j in range(len(members))]
        for j, i in enumerate(idx):
            s[i], d[i] = edges[j % len(edges)]
    dst.mkdir(parents=True)
    shutil.copy(src / "nodes.csv", dst / "nodes.csv")
    t.assign(sourceNodeId=s, targetNodeId=d).to_csv(dst / "transactions.csv", index=False)
    return dst
