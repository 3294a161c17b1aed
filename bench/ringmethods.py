"""The ring finders `bench rings` compares, each over the same snapshot of a world.

- components: connected components of users over shared entities with at most `cap` recent
  users (the Neo4j fraud examples' WCC with a hub cap), flagged when a member has a fraud label;
- label propagation: communities of the user-entity graph, labels passed from users to
  entities and back (an entity of d users weighs 1 / (d - 1) for its users), half of the users
  moving per round in a seeded order (a synchronous update oscillates); flagged likewise;
- fraudring: `gnn.ringrisk.ring_groups`, the rule the workers run, with its own suspicion flag.

A flagged ring counts when it has at least three members (`world.io.match_rings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
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


def _heaviest(
    node: np.ndarray, label: np.ndarray, weight: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per node, the label of the largest summed weight (ties: the smaller label)."""
    key = node.astype(np.int64) * n + label
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=weight)
    nodes, labels = uniq // n, uniq % n
    order = np.lexsort((labels, -total, nodes))
    nodes, labels = nodes[order], labels[order]
    first = np.r_[True, nodes[1:] != nodes[:-1]]
    return nodes[first], labels[first]


def label_propagation(
    w: BenchWorld, at: int, labelled: set[str], p: dict[str, Any]
) -> list[set[str]]:
    """Label propagation on the user-entity graph (users and entities alternate): an entity
    takes its users' commonest label, a user the label its entities weigh most (an entity of d
    users weighs 1 / (d - 1)); half the users move per round, in a seeded order."""
    ent, user, degree = _pairs(w, at, window_days=p["window_days"], kinds=_kinds(p))
    keep = (degree >= 2) & (degree <= p["cap"])
    ent, user, degree = ent[keep], user[keep], degree[keep]
    if len(ent) == 0:
        return []
    n = w.index.n_nodes
    label = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(p.get("seed", 0))
    ones, wt = np.ones(len(ent)), 1.0 / (degree - 1)
    for _ in range(p.get("rounds", 30)):
        e, le = _heaviest(ent, label[user], ones, n)
        label[e] = le
        u, lu = _heaviest(user, label[ent], wt, n)
        move = rng.random(len(u)) < 0.5
        changed = move & (label[u] != lu)
        if not changed.any():
            break
        label[u[move]] = lu[move]
    nodes = np.unique(user)
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
