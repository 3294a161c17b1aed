"""Suspicious rings grown from labels (`graph.rings`' docstring has the reasoning): how unusual
each shared entity's labelled users are for its kind, and how that evidence adds up along a
group. Pure functions on links already read, like `graph.ringrule`, so that the workers and the
offline point-in-time features run the same code."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import binom

from graph.ringrule import Component, bounded
from graph.schemas import RingParams

#: (kind, entity id) -> (its recent tied users, those of them labelled fraud)
EvidenceLinks = dict[tuple[str, str], tuple[list[str], list[str]]]
#: (kind, entity id) -> the labelled users' share of its tied users' transactions
LabelledUse = dict[tuple[str, str], float]
#: (kind, entity id) -> its recent users it does not tie (a shop's one-off customers)
Untied = dict[tuple[str, str], int]


def use_share(uses: float | None, bad_uses: float | None) -> float:
    """The labelled users' share of an entity's transactions (1 where none are counted)."""
    return float(bad_uses or 0) / float(uses) if uses else 1.0


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
    cands: Sequence[tuple[float, tuple[str, str]]],
    elinks: EvidenceLinks,
    *,
    alpha: float,
    untied: Mapping[tuple[str, str], int] | None = None,
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
    still using it, is a resold card, not one crew; a shop where two crews' members came back,
    among customers who came once (`untied`), is where crews cash out, not one crew."""
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
        shared_by = len(users) + (untied or {}).get(key, 0)
        if len(standing) >= 2 and lp > max(loosest[r] for r in standing) and len(bad) < shared_by:
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
    elinks: EvidenceLinks,
    *,
    rates: Mapping[str, float],
    params: RingParams,
    labelled_use: Mapping[tuple[str, str], float] | None = None,
    untied: Mapping[tuple[str, str], int] | None = None,
) -> list[Component]:
    """Rings grown from labels (see `graph.rings`).

    An entity whose labelled sharing is unusual for its kind (two or more labelled users, at
    least ``params.evidence_share`` of its users, `evidence` <= ``params.chain_alpha``; beyond
    ``params.evidence_cap`` users, labels also twice as common among them as in its kind, so
    that a hub of a population where labels are everywhere is no crew's proxy) is a
    candidate; candidates tying labelled users into a group whose evidence multiplies to
    ``params.evidence_alpha`` or less (`chained`) tie their labelled users, and their unlabelled
    ones where labels are at least ``params.join_share`` of its users and of its use
    (`labelled_use`: a stolen card's owner, who pays with it every week, is no tester) or where
    the user is tied by two such entities. Labels then propagate one step: an unlabelled user
    tied to two or more labelled users through entities whose `evidence` multiplies to
    ``params.join_alpha`` or less joins them (one relay member whose label has not arrived; a
    family hanging on to one victim through its home IP and tablet ties one labelled user,
    however many entities). A group of at least `min_size` with two labelled members is a
    suspicious ring; one bigger than `max_size` is split without its merchants as `bounded`
    splits the structural ones (where most customers have a fraud label, as in the handbook,
    shops chain thousands), and what is still too big into its communities (coincidences chain
    crews)."""
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
    tail_of = dict(zip(keys, tails.tolist(), strict=True))
    for key, p in tail_of.items():
        users, bad = elinks[key]
        if len(users) > params.evidence_cap and len(bad) < 2 * rates.get(key[0], 1.0) * len(users):
            continue  # beyond the cap only a crew's own: labels twice as common as in its kind
        for u in users:
            if u not in labelled:
                weak.setdefault(u, []).append((key, p))
        if len(bad) >= max(2, params.evidence_share * len(users)) and p <= max(
            params.chain_alpha, params.evidence_alpha
        ):
            cands.append((p, key))
    chosen = chained(cands, elinks, alpha=params.evidence_alpha, untied=untied)
    strong = {key: elinks[key][0] for key in sorted(chosen)}
    for key, users in strong.items():
        for u in users:
            seen[u] = seen.get(u, 0) + 1
        use = 1.0 if labelled_use is None else labelled_use.get(key, 1.0)
        if len(elinks[key][1]) >= params.join_share * len(users) and use >= params.join_share:
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
    grown = {k: us for k, us in links.items() if len(us) >= 2}
    for comp in bounded(grown, params=params, tails=tail_of)[0]:
        if len(labelled.intersection(comp.members)) >= 2:
            comp.suspicious, comp.flag = True, "labels"
            out.append(comp)
    return out
