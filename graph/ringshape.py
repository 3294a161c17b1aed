"""Groups beyond a household, flagged by what such groups turned out to be in this population.

A ring is flagged from labels (`graph.ringevidence.evidence_rings`) once two of its members have a
chargeback; before that it is a structural group. Whether a group bigger than a household (or
tied across homes) is suspicious on its shape alone depends on the population: where dorms,
offices and extended families share as much as rings do, most such groups never turn out to be
rings; where they do not, most do. So the population answers it: among the structural groups
beyond a household, the share confirmed (two or more members in one suspicious ring). When the
one-sided 95% Wilson lower bound of that share is at least `RingParams.shape_share`, every such
group is suspicious, labelled or not. A full run measures the share and stores it for
incremental runs, like the kinds' label rates (`graph.evidence`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from graph.ringrule import Component
from graph.schemas import RingParams

Z = 1.645  # one-sided 95%


def beyond_household(comp: Component, params: RingParams) -> bool:
    return len(comp.members) > params.household_max or comp.across_homes


def shape_counts(
    groups: Iterable[Component], flagged: Sequence[Component], params: RingParams
) -> tuple[int, int]:
    """(confirmed, all) structural groups beyond a household; confirmed: two or more members
    in one suspicious ring."""
    ring_of: dict[str, list[int]] = {}
    for i, f in enumerate(flagged):
        for u in f.members:
            ring_of.setdefault(u, []).append(i)
    big = [g for g in groups if beyond_household(g, params)]
    confirmed = 0
    for g in big:
        shared = Counter(i for u in g.members for i in ring_of.get(u, ()))
        confirmed += any(n >= 2 for n in shared.values())
    return confirmed, len(big)


def lower_bound(confirmed: int, n: int) -> float:
    """One-sided 95% Wilson lower bound of the confirmed share (0 without groups)."""
    if n <= 0:
        return 0.0
    p = confirmed / n
    z2 = Z * Z
    centre = p + z2 / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


def shape_flag(groups: Iterable[Component], counts: tuple[int, int], params: RingParams) -> int:
    """Mark the groups beyond a household suspicious when the population's confirmed share
    allows it; returns how many were marked."""
    if params.shape_share <= 0 or lower_bound(*counts) < params.shape_share:
        return 0
    marked = 0
    for g in groups:
        if beyond_household(g, params) and not g.suspicious:
            g.suspicious, g.flag = True, "shape"
            marked += 1
    return marked
