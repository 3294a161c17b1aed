"""AMLSim's other typologies rewired onto a sample's own transfers (bench.amlshapes)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bench.amlshapes import SHAPES, rewire, shape_edges
from world.amlsim import load_amlsim
from world.io import read_world

M = list(range(10, 19))  # nine members


def test_each_shape_has_its_structure() -> None:
    rng = np.random.default_rng(0)
    g = {s: nx.DiGraph(shape_edges(s, M, rng)) for s in SHAPES}
    sg = g["scatter_gather"]
    assert sg.out_degree(10) == 7 and sg.in_degree(18) == 7 and sg.number_of_edges() == 14
    gs = g["gather_scatter"]
    assert gs.in_degree(14) == 4 and gs.out_degree(14) == 4
    bp = g["bipartite"]
    assert {u for u, _ in bp.edges} == set(M[:4]) and {v for _, v in bp.edges} == set(M[4:])
    st = g["stack"]
    assert st.number_of_edges() == 18 and not set(M[:3]) & {v for _, v in st.edges}
    for shape in SHAPES:
        assert nx.is_weakly_connected(g[shape]) and set(g[shape]) == set(M), shape
    with pytest.raises(ValueError, match="shape"):
        shape_edges("ladder", M, rng)


def _sample(root: Path) -> Path:
    """A cycle of five laundering accounts paying around four times, and background."""
    root.mkdir()
    nodes = pd.DataFrame({"nodeid": range(30), "isFraud": [1 if i < 5 else 0 for i in range(30)]})
    cycle = [(i, (i + 1) % 5, 100.0 + i, step) for step in range(4) for i in range(5)]
    rng = np.random.default_rng(1)
    other = [
        (int(a), int(b), 10.0, int(rng.integers(0, 5))) for a, b in rng.integers(5, 30, (60, 2))
    ]
    txns = pd.DataFrame(cycle + other, columns=["sourceNodeId", "targetNodeId", "value", "time"])
    nodes.to_csv(root / "nodes.csv", index=False)
    txns.to_csv(root / "transactions.csv", index=False)
    return root


def test_rewire_keeps_the_transfers_and_changes_who_pays_whom(tmp_path: Path) -> None:
    src = _sample(tmp_path / "src")
    out = rewire(src, tmp_path / "sg", shape="scatter_gather", seed=7)
    a, b = pd.read_csv(src / "transactions.csv"), pd.read_csv(out / "transactions.csv")
    assert (a[["value", "time"]] == b[["value", "time"]]).all().all()
    assert a.iloc[20:].equals(b.iloc[20:])  # background untouched
    pattern = nx.DiGraph(list(zip(b.sourceNodeId[:20], b.targetNodeId[:20], strict=True)))
    assert set(pattern) == set(range(5)) and pattern.number_of_edges() == 6  # 1 -> 3 -> 1
    assert sorted(d for _, d in pattern.out_degree) == [0, 1, 1, 1, 3]
    # the loader still finds one pattern of the five accounts (every pair transfers again)
    load_amlsim(src=out, out=tmp_path / "w", seed=7)
    truth = read_world(tmp_path / "w").truth.to_pandas()
    assert truth["ring_id"].dropna().nunique() == 1 and truth["is_fraud"].sum() == 20
