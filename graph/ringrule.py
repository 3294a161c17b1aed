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
from scipy.stats import binom

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
    labels: then it is cut into its communities (`graph.communities`). `comp_of`: users'
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
            pieces = [part]
            if tails is not None and len(part.members) > params.max_size:
                cut = communities(part.members, part.entities, links=strong, tails=tails)
                pieces = [Component(m, e) for m, e in cut if len(m) >= params.min_size]
            for piece in pieces:
                if len(piece.members) <= params.max_size:
                    kept.append(piece)
                else:
                    dropped.append(len(piece.members))
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
    fraud). `graph.queries._BAD` is the same rule in Cypher."""
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


#: (kind, entity id) -> (its recent tied users, those of them labelled fraud)
EvidenceLinks = dict[tuple[str, str], tuple[list[str], list[str]]]


def label_rates(totals: Mapping[str, tuple[float, float]], *, prior: float) -> dict[str, float]:
    """Per entity kind, the share of labelled users among all recent user-entity ties of that
    kind (`totals`: kind -> (ties, labelled ones)); `prior` where a kind has none yet. This is
    the population a shared entity is compared with."""
    out = {}
    for kind, (users, bad) in totals.items():
        out[kind] = min(max(bad / users if users else prior, 1e-4), 0.5)
    return out


def evidences(
    users: Sequence[int], bad: Sequence[int], rates: Sequence[float]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """P(at least `bad` labelled among `users` drawn at the kind's rate), per entity [n]: how
    unusual each entity's labelled sharing is (small is unusual). One vectorised call: a
    refresh scores tens of thousands of entities."""
    n, b, r = np.asarray(users), np.asarray(bad), np.asarray(rates, dtype=np.float64)
    out = np.ones(len(n))
    some = b > 0
    out[some] = binom.sf(b[some] - 1, n[some], r[some])
    return out


def evidence(users: int, bad: int, rate: float) -> float:
    """`evidences` of one entity."""
    return float(evidences([users], [bad], [rate])[0])


def chained(
    cands: Sequence[tuple[float, tuple[str, str]]], elinks: EvidenceLinks, *, alpha: float
) -> set[tuple[str, str]]:
    """The candidate entities (tail, key) that tie labelled users into a group whose combined
    evidence is at most `alpha`.

    Entities are taken from the most unusual on (Kruskal's order); one that ties labelled users
    not yet grouped together multiplies its tail into their group's evidence, one that ties
    users already grouped adds nothing (a pair sharing a phone and a card is one coincidence,
    not two). A relay, each entity shared by two labelled members, is then as strong as its
    chain, not as its weakest pair, whatever the kind's rate. Two groups that each stand on
    their own evidence are joined only by a tie no weaker than the weakest one either was
    built of, by several ties between them that multiply to that, or by an entity only
    labelled users share (a relay's pair): one stolen card that two crews tested, its owner
    still using it, is a resold card, not one crew."""
    parent: dict[str, str] = {}

    def find(u: str) -> str:
        while parent.get(u, u) != u:
            parent[u] = parent.get(parent[u], parent[u])
            u = parent[u]
        return u

    limit = math.log(alpha)
    ev: dict[str, float] = {}  # group root -> log of its evidence
    loosest: dict[str, float] = {}  # group root -> log of the weakest tie it was built of
    held: list[tuple[float, tuple[str, str]]] = []  # ties between groups that stand alone

    def join(roots: list[str], lp: float) -> None:
        head = roots[0]
        ev[head] = sum(ev.pop(r, 0.0) for r in roots) + lp
        loosest[head] = max([lp] + [loosest.pop(r, -math.inf) for r in roots])
        for r in roots[1:]:
            parent[r] = head

    for p, key in sorted(cands):
        roots = sorted({find(b) for b in elinks[key][1]})
        if len(roots) < 2:
            continue
        lp = math.log(max(p, 1e-300))
        users, bad = elinks[key]
        standing = [r for r in roots if ev.get(r, 0.0) <= limit]
        if len(standing) >= 2 and lp > max(loosest[r] for r in standing) and len(bad) < len(users):
            held.append((lp, key))
            continue
        join(roots, lp)
    while True:  # ties held back between the same two groups add up
        between: dict[tuple[str, str], float] = {}
        for lp, key in held:
            roots = sorted({find(b) for b in elinks[key][1]})
            if len(roots) == 2:
                pair = (roots[0], roots[1])
                between[pair] = between.get(pair, 0.0) + lp
        ready = [
            pair
            for pair, lp in sorted(between.items())
            if lp <= max(loosest.get(pair[0], 0.0), loosest.get(pair[1], 0.0))
        ]
        if not ready:
            break
        a, b = ready[0]
        join([a, b], between[(a, b)])
    out: set[tuple[str, str]] = set()
    for _p, key in cands:
        heads = {find(b) for b in elinks[key][1]}
        if len(heads) == 1 and ev.get(heads.pop(), 0.0) <= limit:
            out.add(key)
    return out


def evidence_rings(
    elinks: EvidenceLinks, *, rates: Mapping[str, float], params: RingParams
) -> list[Component]:
    """Rings grown from labels (see `graph.rings`).

    An entity whose labelled sharing is unusual for its kind (two or more labelled users, at
    least ``params.evidence_share`` of its users, `evidence` <= ``params.chain_alpha``) is a
    candidate; candidates tying labelled users into a group whose evidence multiplies to
    ``params.evidence_alpha`` or less (`chained`) tie their labelled users, and their unlabelled
    ones where labels are at least ``params.join_share`` of its users or where the user is tied
    by two such entities. Labels then propagate one step: an unlabelled user tied to two or more
    labelled users through entities whose `evidence` multiplies to ``params.join_alpha`` or less
    joins them (one relay member whose label has not arrived; a family hanging on to one victim
    through its home IP and tablet ties one labelled user, however many entities). A group of
    at least `min_size` with two labelled members is a suspicious ring; one bigger than
    `max_size` is split without its merchants as `bounded` splits the structural ones (where
    most customers have a fraud label, as in the handbook, shops chain thousands), and what is
    still too big into its communities (coincidences chain crews)."""
    joined: set[str] = set()
    seen: dict[str, int] = {}
    labelled = {u for _users, bad in elinks.values() for u in bad}
    weak: dict[str, list[tuple[tuple[str, str], float]]] = {}
    cands: list[tuple[float, tuple[str, str]]] = []
    keys = sorted(elinks)
    tails = evidences(
        [len(elinks[k][0]) for k in keys],
        [len(elinks[k][1]) for k in keys],
        [rates.get(k[0], 1.0) for k in keys],
    )
    for key, p in zip(keys, tails.tolist(), strict=True):
        users, bad = elinks[key]
        for u in users:
            if u not in labelled:
                weak.setdefault(u, []).append((key, p))
        if len(bad) >= max(2, params.evidence_share * len(users)) and p <= max(
            params.chain_alpha, params.evidence_alpha
        ):
            cands.append((p, key))
    chosen = chained(cands, elinks, alpha=params.evidence_alpha)
    strong = {key: elinks[key][0] for key in sorted(chosen)}
    for key, users in strong.items():
        for u in users:
            seen[u] = seen.get(u, 0) + 1
        if len(elinks[key][1]) >= params.join_share * len(users):
            joined.update(users)
    keep = labelled | joined | {u for u, n in seen.items() if n >= 2}
    links = {k: [u for u in us if u in keep] for k, us in strong.items()}
    for u, ties in weak.items():
        if u in keep:
            continue
        best: dict[str, tuple[float, tuple[str, str]]] = {}  # labelled partner -> closest tie
        for key, p in ties:
            for b in elinks[key][1]:
                if b not in best or p < best[b][0]:
                    best[b] = (p, key)
        two = sorted(best.items(), key=lambda x: (x[1][0], x[0]))[:2]
        if (
            len(two) == 2
            and two[0][1][1] != two[1][1][1]
            and math.prod(p for _b, (p, _k) in two) <= params.join_alpha
        ):
            for b, (_p, key) in two:
                links[key] = sorted(set(links.get(key, [])) | {u, b})
    out = []
    tail_of = dict(zip(keys, tails.tolist(), strict=True))
    grown = {k: us for k, us in links.items() if len(us) >= 2}
    for comp in bounded(grown, params=params, tails=tail_of)[0]:
        if len(labelled.intersection(comp.members)) >= 2:
            comp.suspicious, comp.flag = True, "labels"
            out.append(comp)
    return out


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
