"""The ring rule on links already read from the graph: pure functions, so that the workers
(`graph.rings.detect`) and the offline point-in-time features (`gnn.ringrisk`) run the very
same code. The reasoning is in `graph.rings`' docstring."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graph.communities import communities
from graph.schemas import FlaggedBy, RingParams

Links = dict[tuple[str, str], list[str]]  # (kind, entity id) -> its recent users


@dataclass
class Component:
    members: list[str]
    entities: list[tuple[str, str]]
    across_homes: bool = False  # tied by a device several homes use (see `core`)
    suspicious: bool = False  # set by the caller once labels are known
    density: float = 0.0
    flag: FlaggedBy | None = None  # why it is suspicious


def components(links: Links, *, min_size: int = 2) -> list[Component]:
    """Connected components of the user-entity graph, as user groups of at least `min_size`."""
    users: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    keys = list(links)
    for e, key in enumerate(keys):
        for u in links[key]:
            rows.append(users.setdefault(u, len(users)))
            cols.append(e)
    n_users, n = len(users), len(users) + len(keys)
    if not rows:
        return []
    graph = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (np.array(rows), np.array(cols) + n_users)),
        shape=(n, n),
    )
    _, label = connected_components(graph, directed=False)
    by_label: dict[int, Component] = {}
    names = list(users)
    for i, name in enumerate(names):
        by_label.setdefault(int(label[i]), Component([], [])).members.append(name)
    for e, key in enumerate(keys):
        comp = by_label.get(int(label[n_users + e]))
        if comp is not None:
            comp.entities.append(key)
    out = [c for c in by_label.values() if len(c.members) >= min_size]
    for c in out:
        c.members.sort()
        c.entities.sort()
    return out


def labelled(links: Links, comp_of: Mapping[str, int], *, min_size: int = 2) -> list[Component]:
    """`components`, from each user's component label computed elsewhere (GDS WCC in the
    database) over the same links: the same groups, in the same order."""
    by_label: dict[int, Component] = {}
    seen: set[str] = set()
    for users in links.values():
        for u in users:
            if u not in seen:
                seen.add(u)
                by_label.setdefault(comp_of[u], Component([], [])).members.append(u)
    for key, users in links.items():
        if users:
            by_label[comp_of[users[0]]].entities.append(key)
    out = [c for c in by_label.values() if len(c.members) >= min_size]
    for c in out:
        c.members.sort()
        c.entities.sort()
    return out


def bounded(
    links: Links,
    *,
    params: RingParams,
    comp_of: Mapping[str, int] | None = None,
    tails: Mapping[tuple[str, str], float] | None = None,
) -> tuple[list[Component], list[int]]:
    """`components` of at most ``params.max_size`` users, and the sizes of those given up.

    A crew is tens of accounts. A component of thousands is a neighbourhood's regulars chained
    from one small shop to the next (every terminal of the handbook benchmark), not a ring: its
    "fraud rate" would only count the town's victims. It is split without its merchant links,
    the weakest evidence, so a crew tied by devices, IPs or cards inside it stays a ring; what
    is still too big is not one, unless `tails` (each entity's evidence) say it was grown from
    labels: then it is cut into its communities (`graph.communities`), each kept whatever its
    size (a takeover crew of a hundred accounts on its own proxies is one). `comp_of`: users'
    component labels where the database computed them (`graph.gds`)."""
    kept: list[Component] = []
    dropped: list[int] = []
    whole = (
        components(links, min_size=params.min_size)
        if comp_of is None
        else labelled(links, comp_of, min_size=params.min_size)
    )
    for comp in whole:
        if len(comp.members) <= params.max_size:
            kept.append(comp)
            continue
        strong = {key: links[key] for key in comp.entities if key[0] != "merchant"}
        for part in components(strong, min_size=params.min_size):
            if len(part.members) <= params.max_size:
                kept.append(part)
            elif tails is None:
                dropped.append(len(part.members))
            else:
                cut = communities(
                    part.members,
                    part.entities,
                    links=strong,
                    tails=tails,
                    clique_max=params.evidence_cap,
                )
                kept.extend(Component(m, e) for m, e in cut if len(m) >= params.min_size)
    return kept, dropped


def wide_device_users(comps: Iterable[Component], links: Links, *, cross_homes: int) -> set[str]:
    """Users whose home `core` needs: those of devices with at least `cross_homes` users."""
    return {
        u
        for c in comps
        for key in c.entities
        if key[0] == "device" and len(links[key]) >= cross_homes
        for u in links[key]
    }


def core(
    comp: Component,
    links: Links,
    *,
    household_max: int,
    min_size: int,
    cross_homes: int,
    bases: Mapping[str, str],
) -> Component:
    """Members tied in through an entity bigger than a household or a device used from
    `cross_homes` homes (`bases`: user -> home IP; see the module docstring)."""
    across = [
        key
        for key in comp.entities
        if key[0] == "device" and len({bases[u] for u in links[key] if u in bases}) >= cross_homes
    ]
    if len(comp.members) <= household_max:
        return Component(comp.members, comp.entities, across_homes=bool(across))
    big = [key for key in comp.entities if len(links[key]) > household_max]
    strong = {u for key in big + across for u in links[key]}
    keep = [m for m in comp.members if m in strong]
    if len(keep) < max(min_size, 3):
        return Component(comp.members, comp.entities, across_homes=bool(across))
    kept = set(keep)
    ents = [key for key in comp.entities if sum(u in kept for u in links[key]) >= 2]
    return Component(keep, ents, across_homes=bool(across))


def cores(
    found: Iterable[Component], links: Links, *, params: RingParams, bases: Mapping[str, str]
) -> list[Component]:
    """`core` of each component with the rule's parameters."""
    return [
        core(
            c,
            links,
            household_max=params.household_max,
            min_size=params.min_size,
            cross_homes=params.cross_homes,
            bases=bases,
        )
        for c in found
    ]


def pick_bases(rows: Iterable[Sequence[Any]]) -> dict[str, str]:
    """Home IP per user from (user, ip, transactions) rows: the most transactions, then the
    smallest IP id (the same choice as `gnn.ringrisk`, whatever order the rows come in)."""
    best: dict[str, tuple[int, str]] = {}
    for user, ip, n in rows:
        cur = best.get(user)
        if cur is None or int(n) > cur[0] or (int(n) == cur[0] and ip < cur[1]):
            best[user] = (int(n), ip)
    return {u: ip for u, (_, ip) in best.items()}


def density(comp: Component, links: Links) -> float:
    size = len(comp.members)
    if size < 2:
        return 0.0
    pairs: set[tuple[str, str]] = set()
    members = set(comp.members)
    for key in comp.entities:
        pairs.update(combinations(sorted(u for u in links[key] if u in members), 2))
    return len(pairs) / (size * (size - 1) / 2)


def counts_as_fraud(label: str | None, fraud_txn_n: int | float | None) -> bool:
    """A member is fraud when labelled so, or when it has fraud transactions and nobody labelled
    it legitimate (the owner of a stolen card, cleared by an investigator, is no ring member's
    fraud). `graph.label_queries._BAD` is the same rule in Cypher."""
    return label == "fraud" or (label != "legitimate" and (fraud_txn_n or 0) > 0)


def risk_terms(*, fraud_rate: float, size: int, dens: float, age_days: float) -> dict[str, float]:
    """The weighted terms of `risk` (the evidence shows them): risk = recency x their sum."""
    return {
        "fraud_rate": 0.55 * fraud_rate,
        "size": 0.20 * (1 - math.exp(-max(size - 2, 0) / 4)),
        "density": 0.15 * dens,
        "youth": 0.10 * math.exp(-max(age_days, 0.0) / 30),
    }


def risk(*, fraud_rate: float, size: int, dens: float, age_days: float, idle_days: float) -> float:
    recency = math.exp(-max(idle_days, 0.0) / 14)
    terms = risk_terms(fraud_rate=fraud_rate, size=size, dens=dens, age_days=age_days)
    return recency * sum(terms.values())


def size_flag(comps: Iterable[Component], params: RingParams) -> None:
    """The label-free flag `params.size_flag` opts into (see its description)."""
    if not params.size_flag:
        return
    for comp in comps:
        if len(comp.members) > params.size_flag or comp.across_homes:
            comp.suspicious, comp.flag = True, "size"


def with_flagged(groups: list[Component], flagged: list[Component]) -> list[Component]:
    """The structural groups not contained in a suspicious ring, then the suspicious rings: one
    ring per set of members, the suspicious one where both find it."""
    covers = [set(f.members) for f in flagged]
    return [g for g in groups if not any(c.issuperset(g.members) for c in covers)] + flagged
