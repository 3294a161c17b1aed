"""Per-entity ring risk as of a moment, by the graph's own ring rule: what the workers serve.

Online, `GRAPH_FEATURES` come from the GraphRisk the workers cache (`workers.scoring`): for each
ring `graph.rings.detect` finds, its members and shared entities get the ring's score (the
documented heuristic `graph.ringrule.risk`; a live GCN's ring score is cached beside it for
explanations and alerts, never as a feature), size and labelled fraud rate;
an entity in two rings keeps the riskier; an entity in no ring has none (NaN). Training on
anything else (a label rate for every entity, a looser ring rule) would teach the model features
it never sees in production, so this module rebuilds those same values from the transactions
known strictly before ``at``:

- the user-entity edges of the graph (count, last seen) and each user's activity (count, first
  and last seen), from every transaction with ``ts < at``, as the store aggregates them;
- the linking rule of `graph.queries` (degree within the window between the kind's floor and
  cap, IP ties by the user's share, merchant repeat customers), applied here with numpy;
- each user's home IP as `graph.ringrule.pick_bases` chooses it (`user_bases`);
- `graph.ringrule.components`, `core`, `density` and `risk` themselves, on integer node ids;
- a member counts as fraud when one of its transactions has a fraud label known before ``at``.

Not reproduced: stable ring ids (features do not use them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gnn.features import DAY_US
from gnn.graphdata import KINDS, TxnArrays, receipt_rows
from graph.ringevidence import (
    EvidenceLinks,
    LabelledUse,
    Untied,
    evidence_rings,
    label_rates,
    use_share,
)
from graph.ringrule import (
    Component,
    Links,
    bounded,
    cores,
    density,
    risk,
    size_flag,
    wide_device_users,
    with_flagged,
)
from graph.ringshape import shape_counts, shape_flag
from graph.schemas import RingParams

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
USER = 0


@dataclass
class RingRisk:
    """Per global node id: the served GraphRisk fields (NaN where the node is in no ring)."""

    at: int
    score: F64
    ring_size: F64
    ring_fraud_rate: F64
    rings: int


@dataclass
class Groups:
    """Rows grouped by a key once per world, each group in time order, so the aggregate of the
    rows before any moment is a prefix of every group: a count, not a sort, per snapshot."""

    key: I64  # per group, ascending
    starts: I64  # per group, first position in `rows`
    rows: I64  # row indices sorted by (key, row)

    @classmethod
    def of(cls, keys: I64, rows: I64) -> Groups:
        """Groups of ``rows`` (ascending) by ``keys`` (aligned with rows)."""
        perm = np.lexsort((rows, keys))
        k = keys[perm]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, np.int64)
        return cls(k[starts], starts.astype(np.int64), rows[perm])

    def before(self, hi: int, t: I64) -> tuple[I64, I64, I64]:
        """Keys with rows < ``hi``, with their count and last ``t``."""
        if len(self.starts) == 0:
            return self.key, self.starts, self.starts
        seen = np.add.reduceat((self.rows < hi).astype(np.int64), self.starts)
        has = seen > 0
        last = t[self.rows[self.starts[has] + seen[has] - 1]]
        return self.key[has], seen[has], last


@dataclass
class RingIndex:
    """`Groups` of (entity, user) pairs per entity kind and of users' rows, for one world."""

    pairs: dict[str, Groups]
    users: Groups
    n_nodes: int
    ip_rank: I64  # per node: an IP's position in id (string) order, for `pick_bases`' ties

    @classmethod
    def of(cls, a: TxnArrays) -> RingIndex:
        n = np.int64(max(a.n_nodes, 1))
        paid, receipts = receipt_rows(a, 0, len(a.t))  # each at its transfer's row
        node = np.concatenate([a.node, receipts])
        user = node[:, USER]
        row_of = np.concatenate([np.arange(len(a.t), dtype=np.int64), paid])
        pairs = {}
        for k, kind in enumerate(KINDS[1:], start=1):
            at = np.flatnonzero((user >= 0) & (node[:, k] >= 0))
            pairs[kind] = Groups.of(node[at, k] * n + user[at], row_of[at])
        at = np.flatnonzero(user >= 0)
        k = KINDS.index("ip")
        ids = a.node_ids[k]
        ip_rank = np.zeros(max(a.n_nodes, 1), dtype=np.int64)
        ip_rank[int(a.offsets[k]) + np.argsort(ids, kind="stable")] = np.arange(len(ids))
        return cls(pairs, Groups.of(user[at], row_of[at]), int(n), ip_rank)


def _tied(
    *,
    kind: str,
    users: I64,
    n: I64,
    recent: npt.NDArray[np.bool_],
    user_n: I64,
    params: RingParams,
) -> npt.NDArray[np.bool_]:
    """Which recent pairs tie their user into a ring (`graph.queries._TIED`)."""
    if kind == "ip":
        return recent & (n >= params.ip_min_txns) & (n >= params.ip_share * user_n[users])
    if kind == "merchant":
        return recent & (n >= 2)
    return recent


def _activity(a: TxnArrays, hi: int, index: RingIndex) -> tuple[I64, I64, I64]:
    """Per node: transactions, first and last ``t`` of each user's rows before ``hi`` (the
    store's ACTIVITY self-loop), zeros elsewhere."""
    g = index.users
    uid, count, last_t = g.before(hi, a.t)
    n, first, last = (np.zeros(a.n_nodes, dtype=np.int64) for _ in range(3))
    n[uid], last[uid] = count, last_t
    first[uid] = a.t[g.rows[g.starts[np.searchsorted(g.key, uid)]]]
    return n, first, last


def snapshot_links(
    a: TxnArrays, hi: int, *, since: int, params: RingParams, index: RingIndex, user_n: I64
) -> Links:
    """The linking entities among rows before ``hi`` (links last seen at or after ``since``)
    and the users each ties (`graph.rings.Links`, with global node ids for ids)."""
    n_nodes = np.int64(index.n_nodes)
    links: Links = {}
    for kind in KINDS[1:]:
        if kind == "merchant":
            floor, cap = 2, params.merchant_cap
        else:
            floor, cap = (params.card_min_users if kind == "card" else 2), params.hub_cap
        if cap < floor:
            continue
        pair, n, last = index.pairs[kind].before(hi, a.t)
        ent, users = pair // n_nodes, pair % n_nodes
        recent = last >= since
        degree = np.bincount(ent[recent], minlength=a.n_nodes)
        tied = _tied(kind=kind, users=users, n=n, recent=recent, user_n=user_n, params=params)
        tied_n = np.bincount(ent[tied], minlength=a.n_nodes)
        keep = (degree >= floor) & (degree <= cap) & (tied_n >= 2)
        if kind == "merchant":
            keep &= tied_n >= params.merchant_repeat_share * degree
        sel = tied & keep[ent]
        ents, members = ent[sel], users[sel]  # sorted by entity (pair key order)
        if len(ents) == 0:
            continue
        bounds = np.flatnonzero(np.diff(ents)) + 1
        for group, e in zip(np.split(members, bounds), ents[np.r_[0, bounds]], strict=True):
            links[(kind, str(int(e)))] = [str(int(u)) for u in group]
    return links


def evidence_links(
    a: TxnArrays,
    hi: int,
    *,
    since: int,
    params: RingParams,
    index: RingIndex,
    labelled: set[str],
) -> tuple[EvidenceLinks, dict[str, tuple[float, float]], LabelledUse, Untied]:
    """`graph.label_queries.evidence_links` on the rows before ``hi``: entities with
    2..`evidence_cap` recent users (or more, where labels are at least `join_share` of them) and
    at least one labelled tied one (a merchant ties its repeat customers, any other entity every
    recent user), per kind the recent tied pairs and the labelled ones among them
    (`graph.ringevidence.label_rates`), and per entity the labelled users' share of its
    transactions."""
    n_nodes = np.int64(index.n_nodes)
    bad = np.zeros(index.n_nodes, dtype=bool)
    if labelled:
        bad[np.fromiter((int(u) for u in labelled), dtype=np.int64, count=len(labelled))] = True
    out: EvidenceLinks = {}
    totals: dict[str, tuple[float, float]] = {}
    use: LabelledUse = {}
    untied: Untied = {}
    for kind in KINDS[1:]:
        pair, n, last = index.pairs[kind].before(hi, a.t)
        ent, users = pair // n_nodes, pair % n_nodes
        recent = last >= since
        degree = np.bincount(ent[recent], minlength=index.n_nodes)
        tied = recent & ((n >= 2) if kind == "merchant" else True)
        totals[kind] = (float(tied.sum()), float((tied & bad[users]).sum()))
        n_labelled = np.bincount(ent[recent & bad[users]], minlength=index.n_nodes)
        small = degree[ent] <= params.evidence_cap
        crews = n_labelled[ent] >= params.join_share * degree[ent]  # a crew's own proxy, say
        sel = tied & (degree[ent] >= 2) & (small | crews)
        ents, members, uses = ent[sel], users[sel], n[sel]
        flagged = bad[members]
        n_bad = np.bincount(ents[flagged], minlength=index.n_nodes)
        pick = n_bad[ents] >= 1
        ents, members, flagged, uses = ents[pick], members[pick], flagged[pick], uses[pick]
        if len(ents) == 0:
            continue
        bounds = np.flatnonzero(np.diff(ents)) + 1
        starts = np.r_[0, bounds]
        all_n = np.add.reduceat(uses, starts)
        bad_n = np.add.reduceat(np.where(flagged, uses, 0), starts)
        for group, flags, e, tot, bn in zip(
            np.split(members, bounds),
            np.split(flagged, bounds),
            ents[starts],
            all_n.tolist(),
            bad_n.tolist(),
            strict=True,
        ):
            key = (kind, str(int(e)))
            out[key] = ([str(int(u)) for u in group], [str(int(u)) for u in group[flags]])
            use[key] = use_share(tot, bn)
            untied[key] = int(degree[e]) - len(group)
    return out, totals, use, untied


def user_bases(
    a: TxnArrays, hi: int, *, since: int, cap: int, index: RingIndex, users: set[str]
) -> dict[str, str]:
    """`graph.ringrule.pick_bases` over the rows before ``hi``: each of ``users``' recent IP with
    the most transactions among IPs with at most ``cap`` recent users (ties: smallest id)."""
    if not users:
        return {}
    n_nodes = np.int64(index.n_nodes)
    pair, n, last = index.pairs["ip"].before(hi, a.t)
    ip, usr = pair // n_nodes, pair % n_nodes
    recent = last >= since
    degree = np.bincount(ip[recent], minlength=index.n_nodes)
    wanted = np.fromiter((int(u) for u in users), dtype=np.int64, count=len(users))
    ok = recent & (degree[ip] <= cap) & np.isin(usr, wanted)
    u, i, c = usr[ok], ip[ok], n[ok]
    order = np.lexsort((index.ip_rank[i], -c, u))
    u, i = u[order], i[order]
    first = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, dtype=bool)
    return {str(int(x)): str(int(y)) for x, y in zip(u[first], i[first], strict=True)}


def fraud_users(a: TxnArrays, at: int) -> set[str]:
    """Users (node ids as strings) with a fraud label known before ``at`` on a transaction of
    theirs, paid or received: the payee of a fraudulent transfer is the account it fed (a mule,
    a launderer, a scammer's), as the store counts it (`graph.queries.TXN_PAYEE_LABEL`)."""
    hi = int(np.searchsorted(a.t, at, side="left"))
    known = (a.label[:hi] == 1) & (a.label_ts[:hi] < at)
    parties = np.concatenate([a.node[:hi, USER][known], a.payee[:hi][known]])
    return {str(int(u)) for u in np.unique(parties[parties >= 0])}


def ring_groups(
    a: TxnArrays,
    at: int,
    *,
    params: RingParams,
    index: RingIndex | None = None,
    labelled: set[str] | None = None,
) -> list[Component]:
    """The rings `graph.rings.detect` would find at ``at`` (members as node-id strings;
    ``labelled``: users with a known fraud label, by default those known before ``at``)."""
    index = index or RingIndex.of(a)
    hi = int(np.searchsorted(a.t, at, side="left"))
    user_n, _first, _last = _activity(a, hi, index)
    since = at - int(params.window_days * DAY_US)
    links = snapshot_links(a, hi, since=since, params=params, index=index, user_n=user_n)
    found, _ = bounded(links, params=params)
    wide = wide_device_users(found, links, cross_homes=params.cross_homes)
    bases = user_bases(a, hi, since=since, cap=params.hub_cap, index=index, users=wide)
    comps = cores(found, links, params=params, bases=bases)
    known = fraud_users(a, at) if labelled is None else labelled
    for comp in comps:
        comp.density = density(comp, links)
    size_flag(comps, params)
    elinks, totals, use, untied = evidence_links(
        a, hi, since=since, params=params, index=index, labelled=known
    )
    rates = label_rates(totals, prior=params.label_prior)
    flagged = evidence_rings(elinks, rates=rates, params=params, labelled_use=use, untied=untied)
    for comp in flagged:
        comp.density = density(comp, {k: us for k, (us, _b) in elinks.items()})
    shape_flag(comps, shape_counts(comps, flagged, params), params)
    return with_flagged(comps, flagged)


def ring_risk(
    a: TxnArrays, at: int, *, params: RingParams, index: RingIndex | None = None
) -> RingRisk:
    """The GraphRisk every node would have, had ring detection run on the graph at ``at``
    (`index`: `RingIndex.of(a)`, built once for many snapshots)."""
    index = index or RingIndex.of(a)
    score = np.full(a.n_nodes, np.nan)
    size = np.full(a.n_nodes, np.nan)
    rate = np.full(a.n_nodes, np.nan)
    hi = int(np.searchsorted(a.t, at, side="left"))
    _n, first, last = _activity(a, hi, index)
    known = fraud_users(a, at)
    comps = ring_groups(a, at, params=params, index=index, labelled=known)
    if not comps:
        return RingRisk(at, score, size, rate, 0)
    for comp in comps:
        m = np.array([int(u) for u in comp.members], dtype=np.int64)
        n_members = len(m)
        fraud_rate = sum(u in known for u in comp.members) / n_members
        value = risk(
            fraud_rate=fraud_rate,
            size=n_members,
            dens=comp.density,
            age_days=float(np.mean(at - first[m])) / DAY_US,
            idle_days=(at - int(last[m].max())) / DAY_US,
        )
        ents = np.array([int(e) for _k, e in comp.entities], dtype=np.int64)
        for ids in (m, ents):
            better = ~(score[ids] >= value)  # NaN (no ring yet) or a less risky ring
            ids = ids[better]
            score[ids], size[ids], rate[ids] = value, n_members, fraud_rate
    return RingRisk(at, score, size, rate, len(comps))


def fill_ring_rows(out: F64, rows: slice, node: I64, rr: RingRisk) -> None:
    """GRAPH_FEATURES of ``rows`` as `realtime.features.graph_features` assembles them: a score
    per entity kind, then the largest ring size and fraud rate among entities that have one."""
    safe = np.maximum(node, 0)
    present = node >= 0
    score = np.where(present, rr.score[safe], np.nan)
    out[rows, : len(KINDS)] = score
    has = ~np.isnan(score)
    any_has = has.any(axis=1)
    size = np.where(has, rr.ring_size[safe], -np.inf).max(axis=1)
    rate = np.where(has, rr.ring_fraud_rate[safe], -np.inf).max(axis=1)
    out[rows, len(KINDS)] = np.where(any_has, size, np.nan)
    out[rows, len(KINDS) + 1] = np.where(any_has, rate, np.nan)
