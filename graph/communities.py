"""Crews inside a group grown from labels that is too big to be one ring.

Evidence chains labelled users through entities unusual for their kind; a coincidence (two
fraudsters of different crews who once used the same dynamic IP, a card two crews bought)
ties crews that each stand on dozens of ties of their own. Where such ties chain many crews
into one group bigger than `RingParams.max_size` even without merchants, the group is cut into
its communities (Louvain over the users, a pair weighted by how unusual its shared entities
are) rather than given up: a crew is densely tied inside, and crews are tied to each other by
few coincidences."""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx

Key = tuple[str, str]  # (kind, entity id)

SEED = 7  # Louvain visits nodes in a random order; fixed so that every run cuts alike


def communities(
    members: list[str],
    entities: list[Key],
    *,
    links: Mapping[Key, list[str]],
    tails: Mapping[Key, float],
    clique_max: int,
) -> list[tuple[list[str], list[Key]]]:
    """The communities of two or more of `members` (tied through `entities`, whose users are
    `links`), each with the entities inside it. A pair of users weighs the sum of -log(tail)
    over the entities they share (`tails`: each entity's `graph.ringevidence.evidence`; 0.5 where
    unknown, and no tail counts as weaker than that). An entity of more than `clique_max` users
    (a crew's proxy) is a node of its own tied to each of them with that weight, not a clique:
    a clique's pairs grow with the square of its users."""
    g = nx.Graph()
    g.add_nodes_from(members)
    for key in entities:
        users = sorted(links.get(key, []))
        w = -math.log(min(max(tails.get(key, 0.5), 1e-300), 0.5))
        if len(users) > clique_max:
            g.add_edges_from(((key, u) for u in users), weight=w)
            continue
        for i, u in enumerate(users):
            for v in users[i + 1 :]:
                old = g.get_edge_data(u, v)
                g.add_edge(u, v, weight=w + (old["weight"] if old else 0.0))
    out = []
    for part in nx.community.louvain_communities(g, weight="weight", seed=SEED):
        people = {u for u in part if isinstance(u, str)}
        if len(people) >= 2:
            inside = [k for k in entities if len(people.intersection(links.get(k, []))) >= 2]
            out.append((sorted(people), inside))
    return sorted(out)
