"""Suspicious rings grown from labels, read from the store (`graph.ringevidence.evidence_rings`).

A full run measures, per entity kind, the labelled share of all recent user-entity ties (the
population an entity is compared with), keeps it on a `RingRates` node for incremental runs,
and reads every entity within `evidence_cap` users (or beyond, where labels are at least
`join_share` of its users) that ties two labelled users; it also keeps the population's
confirmed share of groups beyond a household (`graph.ringshape`). An incremental run expands
from the touched users over such entities (and the members of their current rings) to the
closure a full run would group them in, and decides with the stored rates.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from graph import label_queries as q
from graph import ringshape
from graph.ringevidence import EvidenceLinks, LabelledUse, Untied, label_rates, use_share
from graph.ringrule import Component
from graph.schemas import KIND_OF_LABEL, LINKED_KINDS, RingParams

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

_CHUNK = 10_000
OldRings = dict[str, tuple[float, list[str]]]


def _scan(
    store: CypherBackend, build: Any, args: dict[str, Any], page_size: int
) -> list[tuple[str, list[list[Any]]]]:
    tasks = [
        (kind, pred, {**page, **args})
        for pred, page in store._pages("x", page_size=page_size)
        for kind in LINKED_KINDS
    ]

    def fetch(task: tuple[str, str, dict[str, Any]]) -> list[list[Any]]:
        kind, pred, a = task
        return store._read(build(page=pred)[kind], a)

    with ThreadPoolExecutor(max_workers=store.read_parallelism) as pool:
        return [(t[0], rows) for t, rows in zip(tasks, pool.map(fetch, tasks), strict=True)]


def full(
    store: CypherBackend, *, since: float, params: RingParams
) -> tuple[EvidenceLinks, dict[str, float], LabelledUse, Untied]:
    """Every evidence entity, the rates (stored for incremental runs), each entity's labelled
    share of use and its recent users it does not tie."""
    totals: dict[str, tuple[float, float]] = {k: (0.0, 0.0) for k in LINKED_KINDS}
    for kind, rows in _scan(store, q.evidence_totals, {"since": since}, params.page_size):
        for n, bad in rows:
            t = totals[kind]
            totals[kind] = (t[0] + float(n or 0), t[1] + float(bad or 0))
    rates = label_rates(totals, prior=params.label_prior)
    store._write_all(
        [
            (
                q.RATES_WRITE,
                {
                    "kinds": list(rates),
                    "rates": [rates[k] for k in rates],
                    "since": since,
                },
            )
        ]
    )
    links: EvidenceLinks = {}
    use: LabelledUse = {}
    untied: Untied = {}
    args = _evidence_args(since, params)
    for kind, rows in _scan(store, q.evidence_links, args, params.page_size):
        _keep(kind, rows, links=links, use=use, untied=untied)
    return links, rates, use, untied


def _keep(
    kind: str, rows: list[list[Any]], *, links: EvidenceLinks, use: LabelledUse, untied: Untied
) -> list[str]:
    """Rows of the evidence queries into the three maps; the tied users read."""
    seen: list[str] = []
    for eid, users, bad, uses, bad_uses, others in rows:
        links[(kind, eid)] = (list(users), list(bad))
        use[(kind, eid)] = use_share(uses, bad_uses)
        untied[(kind, eid)] = int(others or 0)
        seen.extend(users)
    return seen


def _evidence_args(since: float, params: RingParams) -> dict[str, float]:
    """The parameters of the evidence queries (`graph.label_queries`), full and incremental."""
    return {"since": since, "cap": params.evidence_cap, "share": params.join_share}


def stored_rates(store: CypherBackend, *, params: RingParams) -> dict[str, float]:
    """The rates of the last full run (the prior before any)."""
    rows = store._read(q.RATES_READ)
    if rows and rows[0][0]:
        return {str(k): float(v) for k, v in zip(rows[0][0], rows[0][1], strict=True)}
    return {k: params.label_prior for k in LINKED_KINDS}


def shape_counts(
    store: CypherBackend,
    comps: list[Component],
    flagged: list[Component],
    *,
    params: RingParams,
    full: bool,
) -> tuple[int, int]:
    """The population's confirmed groups beyond a household (`graph.ringshape`): measured and
    stored by a full run, read back by an incremental one (none before a full run)."""
    if full:
        confirmed, groups = ringshape.shape_counts(comps, flagged, params)
        store._write(q.SHAPE_WRITE, {"confirmed": confirmed, "groups": groups})
        return confirmed, groups
    rows = store._read(q.SHAPE_READ)
    if rows and rows[0][1]:
        return int(rows[0][0] or 0), int(rows[0][1])
    return 0, 0


def expand(
    store: CypherBackend,
    users: Collection[str],
    *,
    since: float,
    params: RingParams,
    rings_of: Any,
) -> tuple[EvidenceLinks, set[str], OldRings, LabelledUse, Untied]:
    """Evidence entities around `users`, closed under them and under current ring membership
    (`rings_of(store, users)` -> the rings of those users), their labelled share of use and
    their recent users they do not tie."""
    links: EvidenceLinks = {}
    use: LabelledUse = {}
    untied: Untied = {}
    old: OldRings = {}
    visited: set[str] = set()
    checked: set[tuple[str, str]] = set()
    frontier = set(users)
    args = _evidence_args(since, params)
    while frontier:
        visited |= frontier
        rings = rings_of(store, frontier)
        old.update(rings)
        grow = {m for _, members in rings.values() for m in members} - visited
        ids = sorted(frontier)
        seen: set[tuple[str, str]] = set()
        for i in range(0, len(ids), _CHUNK):
            for label, eid in store._read(
                q.USER_TIES, {"ids": ids[i : i + _CHUNK], "since": since}
            ):
                key = (KIND_OF_LABEL[label], eid)
                if key not in checked:
                    seen.add(key)
        checked |= seen
        for kind in LINKED_KINDS:
            ents = sorted(e for k, e in seen if k == kind)
            for i in range(0, len(ents), _CHUNK):
                rows = store._read(q.ENTITY_EVIDENCE[kind], {"ids": ents[i : i + _CHUNK], **args})
                tied = _keep(kind, rows, links=links, use=use, untied=untied)
                grow.update(u for u in tied if u not in visited)
        frontier = grow
    return links, visited, old, use, untied
