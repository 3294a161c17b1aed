"""The ring finders `bench rings` compares, each over the same snapshot of a world.

- components: connected components of users over shared entities with at most `cap` recent
  users (the Neo4j fraud examples' WCC with a hub cap), flagged when a member has a fraud label;
- label propagation: communities of the user-user graph (an entity of d users adds
  1 / (d - 1) to each pair it ties), each user taking its neighbours' heaviest label, half of the
  users per round in a seeded order (a synchronous update oscillates); flagged likewise;
- fraudring: `gnn.ringrisk.ring_groups`, the rule the workers run, with its own suspicion flag.

A flagged ring counts when it has at least three members (`world.io.match_rings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bench.ringworlds import BenchWorld
from gnn.features import DAY_US
from gnn.graphdata import KINDS
from graph.schemas import RingParams

Finder = Callable[[BenchWorld, int, set[str], dict[str, Any]], list[set[str]]]


def _pairs(
    w: BenchWorld, at: int, *, window_days: float, kinds: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entity, user, entity degree) of the recent user-entity pairs before `at`."""
    hi = int(np.searchsorted(w.a.t, at, side="left"))
    since = at - int(window_days * DAY_US)
    n = np.int64(w.index.n_nodes)
    ents, users = [], []
    for kind in kinds:
        pair, _n, last = w.index.pairs[kind].before(hi, w.a.t)
        keep = last >= since
        ents.append(pair[keep] // n)
        users.append(pair[keep] % n)
    ent, user = np.concatenate(ents), np.concatenate(users)
    degree = np.bincount(ent, minlength=w.index.n_nodes)[ent]
    return ent, user, degree


def _flag(groups: list[np.ndarray], labelled: set[str]) -> list[set[str]]:
    out = []
    for g in groups:
        members = {str(int(u)) for u in g}
        if len(members) >= 3 and members & labelled:
            out.append(members)
    return out


def _components(ent: np.ndarray, user: np.ndarray, n: int) -> list[np.ndarray]:
    if len(ent) == 0:
        return []
    g = coo_matrix((np.ones(len(ent), dtype=np.int8), (user, ent)), shape=(n, n))
    _, label = connected_components(g, directed=False)
    users = np.unique(user)
    lab = label[users]
    order = np.argsort(lab, kind="stable")
    users, lab = users[order], lab[order]
    cuts = np.flatnonzero(np.diff(lab)) + 1
    return [g for g in np.split(users, cuts) if len(g) >= 2]


def _kinds(p: dict[str, Any]) -> tuple[str, ...]:
    return tuple(KINDS[1:]) if p["merchants"] else ("card", "device", "ip")


def components(w: BenchWorld, at: int, labelled: set[str], p: dict[str, Any]) -> list[set[str]]:
    ent, user, degree = _pairs(w, at, window_days=p["window_days"], kinds=_kinds(p))
    keep = (degree >= 2) & (degree <= p["cap"])
    return _flag(_components(ent[keep], user[keep], w.index.n_nodes), labelled)


def label_propagation(
    w: BenchWorld, at: int, labelled: set[str], p: dict[str, Any]
) -> list[set[str]]:
    ent, user, degree = _pairs(w, at, window_days=p["window_days"], kinds=_kinds(p))
    keep = (degree >= 2) & (degree <= p["cap"])
    ent, user, degree = ent[keep], user[keep], degree[keep]
    if len(ent) == 0:
        return []
    df = pd.DataFrame({"e": ent, "u": user, "w": 1.0 / (degree - 1)})
    pairs = df.merge(df[["e", "u"]], on="e", suffixes=("", "_v"))
    pairs = pairs[pairs["u"] != pairs["u_v"]]
    edges = pairs.groupby(["u", "u_v"], sort=False)["w"].sum().reset_index()
    src, dst, wt = (edges[c].to_numpy() for c in ("u", "u_v", "w"))
    nodes = np.unique(src)
    label = np.arange(w.index.n_nodes)
    rng = np.random.default_rng(p.get("seed", 0))
    for _ in range(p.get("rounds", 30)):
        cand = pd.DataFrame({"u": src, "l": label[dst], "w": wt})
        score = cand.groupby(["u", "l"], sort=False)["w"].sum().reset_index()
        score = score.sort_values(["u", "w", "l"], ascending=[True, False, True])
        best = score.drop_duplicates("u")
        new = label.copy()
        new[best["u"].to_numpy()] = best["l"].to_numpy()
        move = rng.random(w.index.n_nodes) < 0.5
        changed = move & (new != label)
        if not changed.any():
            break
        label = np.where(move, new, label)
    lab = label[nodes]
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return _flag(np.split(nodes[order], cuts), labelled)


def fraudring(w: BenchWorld, at: int, labelled: set[str], p: dict[str, Any]) -> list[set[str]]:
    from gnn.ringrisk import ring_groups

    params = RingParams(**{k: v for k, v in p.items() if k in RingParams.model_fields})
    groups = ring_groups(w.a, at, params=params, index=w.index, labelled=labelled)
    return [set(g.members) for g in groups if g.suspicious and len(g.members) >= 3]


FINDERS: dict[str, Finder] = {
    "components": components,
    "label propagation": label_propagation,
    "fraudring": fraudring,
}
