"""Ring detection: groups of users over shared, recent, non-hub entities, flagged on evidence.

Two users are linked when they both used the same device or IP within the window
(`RingParams.window_days`, counted back from the newest data, not the wall clock), provided that
entity has at most `hub_cap` distinct users (a carrier NAT or public wifi links nobody). An IP
ties a user only if the user is based there: at least `ip_min_txns` transactions and `ip_share`
of all the user's transactions (home or a ring's hideout, not an office or a cafe). A card
links only when at least `card_min_users` share it: two users on one card are a couple or a
thief and the victim, three or more is a pattern. A merchant links only its repeat customers,
and only when it is small (`merchant_cap`) and lives off them (`merchant_repeat_share` of its
recent customers came back): a mule ring's shell merchant, not a corner shop whose customers
mostly come once. Chained from one such shop to the next, a neighbourhood's regulars would make a
"ring" of thousands: a component bigger than `max_size` is split without its merchant links,
and what is still bigger is a community, not a ring (`graph.ringrule.bounded`). The degree
of an entity counts its distinct users within the window; an incremental run applies the same
rule (the same Cypher) to the entities it reaches, so it decides exactly like a full run.

Households: families share a home IP, a tablet, a card, so they form components of up to about
`household_max` users. A card links only when more hands than a household and a thief share it
(`card_min_users`): a stolen card is used by its owner's family and by the ring, and would
otherwise pull the family in (at 3 ring validation finds one more crew, but ring risk then
reaches families that share cards and the fraud model pays for it: docs/rings.md). A user's home
is the IP of most of its recent transactions among IPs that are not hubs (`bases`); a device
used from `cross_homes` or more homes is no family's tablet but, say, a takeover crew's phone
(users with no such IP are not counted). A component bigger than a household keeps as members
only the users tied in through an entity shared by more than `household_max` users or a device
used across homes; the family of a taken-over account hanging on through its home IP is not part
of the ring. These structural groups give ring risk to unlabelled accounts; size alone flags
none of them (`size_flag` opts back in): dorms, offices, extended families and a shop's regulars
share as much as rings do. Where most groups beyond a household in this population did turn out
to be rings, the rest are flagged too (`graph.ringshape`, `shape_share`).

Suspicious rings are grown from labels (`graph.evidence`, `graph.ringevidence.evidence_rings`): an
entity with at most `evidence_cap` recent users is a candidate when its labelled sharing is
unusual for its kind: two or more labelled users, at least `evidence_share` of its users, and a
binomial tail at the kind's labelled rate (measured over all recent ties of that kind in the
last full run) of at most `chain_alpha`. Candidates group labelled users and their tails
multiply along the group (`graph.ringevidence.chained`: a relay of pairs is as strong as its chain);
a group whose evidence is at most `evidence_alpha` stands, and two standing groups join only
through ties as strong as their own (a stolen card two crews tested joins nobody). Unlabelled
users come along where labels are at least `join_share` of such an entity's users and of its
transactions (a stolen card's owner keeps paying with it) or two such entities tie them, and one
step of propagation lets an unlabelled user join the two labelled users it is most unusually
tied to through two different entities (`join_alpha`). A group of two or more labelled members
is a suspicious ring; a structural group it contains is dropped in its favour.
The parameters were chosen on validation worlds of every topology (docs/rings.md).

Stable ids: each new component takes the id of the previous ring it shares most members with
(ties: the oldest ring, then the smaller id), each old id at most once; otherwise a new id
`ring-` + sha1(smallest member)[:12]. Incremental runs expand from the touched users (and the
members of their current rings) to the closure of their components, so they compute exactly the
components a full run would find there.

Risk of a ring (0..1): ``recency * (0.55 fraud_rate + 0.20 size_term + 0.15 density +
0.10 youth)`` with ``size_term = 1 - exp(-(size - 2) / 4)``, ``youth = exp(-age_days / 30)`` (young
accounts) and ``recency = exp(-idle_days / 14)`` (days since the ring's last activity).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fraudring.logs import get_logger
from graph import evidence, ringevents, ringshape
from graph import queries as q
from graph.ringevents import OldRings
from graph.ringevidence import evidence_rings
from graph.ringrule import (
    Component,
    Links,
    bounded,
    cores,
    counts_as_fraud,
    density,
    pick_bases,
    risk,
    size_flag,
    wide_device_users,
    with_flagged,
)
from graph.schemas import (
    KIND_OF_LABEL,
    LINKED_KINDS,
    EntityRef,
    Ring,
    RingEvent,
    RingParams,
    RingUpdate,
)

if TYPE_CHECKING:
    from graph.cypher import CypherBackend

log = get_logger(__name__)
_CHUNK = 10_000


def ring_from_props(p: dict[str, Any]) -> Ring:
    shared = [s.split(":", 1) for s in p.get("shared") or []]
    return Ring(
        id=p["id"],
        size=int(p["size"]),
        suspicious=bool(p.get("suspicious", False)),
        flagged_by=p.get("flagged_by"),
        members=list(p.get("members") or []),
        shared_entities=[EntityRef(kind=k, id=i) for k, i in shared],
        density=float(p["density"]),
        fraud_n=int(p["fraud_n"]),
        fraud_rate=float(p["fraud_rate"]),
        amount=float(p["amount"]),
        account_age_days=float(p["account_age_days"]),
        first_activity=float(p["first_activity"]),
        last_activity=float(p["last_activity"]),
        risk=float(p["risk"]),
        created_at=float(p["created_at"]),
        updated_at=float(p["updated_at"]),
        gcn_score=None if p.get("gcn_score") is None else float(p["gcn_score"]),
    )


def _user_stats(store: CypherBackend, users: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for i in range(0, len(users), _CHUNK):
        for row in store._read(q.USER_STATS, {"ids": users[i : i + _CHUNK]}):
            out[row[0]] = row[1:]
    return out


def _bases(
    store: CypherBackend, users: Collection[str], *, since: float, cap: int
) -> dict[str, str]:
    """Home IP of each of `users` (see `pick_bases`); an IP with more than `cap` recent users
    is a hub, nobody's home."""
    ids = sorted(users)
    rows: list[list[Any]] = []
    for i in range(0, len(ids), _CHUNK):
        rows += store._read(q.USER_IPS, {"ids": ids[i : i + _CHUNK], "since": since})
    ips = sorted({row[1] for row in rows})
    degree: dict[str, int] = {}
    for i in range(0, len(ips), _CHUNK):
        for eid, n in store._read(q.IP_DEGREES, {"ids": ips[i : i + _CHUNK], "since": since}):
            degree[eid] = int(n)
    return pick_bases(row for row in rows if degree.get(row[1], 0) <= cap)


def _rule(kind: str, params: RingParams) -> dict[str, Any]:
    """Query parameters of the linking rule of one entity kind."""
    if kind == "merchant":
        return {"min_deg": 2, "cap": params.merchant_cap, "share": params.merchant_repeat_share}
    floor = params.card_min_users if kind == "card" else 2
    rule: dict[str, Any] = {"min_deg": floor, "cap": params.hub_cap}
    if kind == "ip":
        rule |= {"ip_min_n": params.ip_min_txns, "ip_share": params.ip_share}
    return rule


def _full_links(store: CypherBackend, *, since: float, params: RingParams) -> Links:
    pages = list(store._pages("x", page_size=params.page_size))
    tasks = []
    for kind in LINKED_KINDS:
        rule = _rule(kind, params)
        if rule["cap"] >= rule["min_deg"]:
            tasks += [(kind, pred, {**page, **rule, "since": since}) for pred, page in pages]

    def fetch(task: tuple[str, str, dict[str, Any]]) -> list[list[Any]]:
        kind, pred, args = task
        return store._read(q.ring_links(page=pred)[kind], args)

    links: Links = {}
    with ThreadPoolExecutor(max_workers=store.read_parallelism) as pool:
        for (kind, _p, _a), rows in zip(tasks, pool.map(fetch, tasks), strict=True):
            for eid, users in rows:
                links[(kind, eid)] = list(users)
    return links


def _rings_of(store: CypherBackend, users: Collection[str]) -> OldRings:
    out: OldRings = {}
    ids = list(users)
    for i in range(0, len(ids), _CHUNK):
        for rid, created, members in store._read(q.USER_RINGS, {"ids": ids[i : i + _CHUNK]}):
            out[rid] = (float(created or 0.0), list(members or []))
    return out


def _expand(
    store: CypherBackend, touched: Collection[str], *, since: float, params: RingParams
) -> tuple[Links, set[str], OldRings]:
    """Links among the closure of `touched` under shared entities and current ring membership."""
    links: Links = {}
    old: OldRings = {}
    visited: set[str] = set()
    checked: set[tuple[str, str]] = set()
    frontier = set(touched)
    tied = {"since": since, "ip_min_n": params.ip_min_txns, "ip_share": params.ip_share}
    while frontier:
        visited |= frontier
        rings = _rings_of(store, frontier)
        old.update(rings)
        grow = {m for _, members in rings.values() for m in members} - visited
        ids = sorted(frontier)
        seen: set[tuple[str, str]] = set()
        for i in range(0, len(ids), _CHUNK):
            for label, eid in store._read(q.USER_ENTITIES, {"ids": ids[i : i + _CHUNK], **tied}):
                key = (KIND_OF_LABEL[label], eid)
                if key not in checked:
                    seen.add(key)
        checked |= seen
        todo = sorted(seen)
        for kind in LINKED_KINDS:
            ents = [e for k, e in todo if k == kind]
            rule = _rule(kind, params)
            if rule["cap"] < rule["min_deg"]:
                continue
            for i in range(0, len(ents), _CHUNK):
                args = {"ids": ents[i : i + _CHUNK], **rule, "since": since}
                found = store._read(q.ENTITY_USERS[kind], args)
                for eid, users in found:
                    links[(kind, eid)] = list(users)
                    grow.update(u for u in users if u not in visited)
        frontier = grow
    links = {k: v for k, v in links.items() if len(v) >= 2}
    return links, visited, old


def detect(
    store: CypherBackend,
    *,
    touched_users: Collection[str] | None,
    params: RingParams,
    now: float | None = None,
) -> RingUpdate:
    t0 = time.perf_counter()
    full = touched_users is None
    if now is None:
        rows = store._read(q.NEWEST_TS)
        now = float(rows[0][0]) if rows and rows[0][0] is not None else None
    if now is None:
        return RingUpdate(full=full, examined_users=0, rings=[])
    since = now - params.window_days * 86400
    if touched_users is None:
        links = _full_links(store, since=since, params=params)
        elinks, rates, use, untied = evidence.full(store, since=since, params=params)
        old: OldRings = {
            rid: (float(c or 0.0), list(m or [])) for rid, c, m in store._read(q.ALL_RINGS)
        }
        examined = len({u for users in links.values() for u in users})
    else:
        rates = evidence.stored_rates(store, params=params)
        seeds = set(touched_users)
        while True:  # closed under both kinds of links and current ring membership
            links, visited, old = _expand(store, seeds, since=since, params=params)
            elinks, evisited, eold, use, untied = evidence.expand(
                store, visited, since=since, params=params, rings_of=_rings_of
            )
            if evisited <= visited:
                break
            seeds = visited | evisited
        old.update(eold)
        examined = len(visited)
    comp_of = None
    if full and store.in_db_components():
        from graph import gds

        rules: dict[str, dict[str, Any]] = {
            k: r for k in LINKED_KINDS if (r := _rule(k, params))["cap"] >= r["min_deg"]
        }
        comp_of = gds.components(store, since=since, rules=rules)
    found, too_big = bounded(links, params=params, comp_of=comp_of)
    if too_big:
        log.info("graph.community_skipped", sizes=sorted(too_big)[-5:], count=len(too_big))
    bases = _bases(
        store,
        wide_device_users(found, links, cross_homes=params.cross_homes),
        since=since,
        cap=params.hub_cap,
    )
    comps = cores(found, links, params=params, bases=bases)
    for comp in comps:
        comp.density = density(comp, links)
    size_flag(comps, params)
    flagged = evidence_rings(elinks, rates=rates, params=params, labelled_use=use, untied=untied)
    for comp in flagged:
        comp.density = density(comp, {k: us for k, (us, _b) in elinks.items()})
    shape = evidence.shape_counts(store, comps, flagged, params=params, full=full)
    shape_flagged = ringshape.shape_flag(comps, shape, params)
    comps = with_flagged(comps, flagged)
    ids = ringevents.assign_ids([c.members for c in comps], old)
    stats = _user_stats(store, sorted({m for c in comps for m in c.members}))
    wall = time.time()
    rings: list[Ring] = []
    for rid, comp in zip(ids, comps, strict=True):
        rings.append(_ring(rid, comp, stats, now=now, wall=wall, old=old))
    removed = sorted(set(old) - set(ids))
    news = {r.id: r.members for r in rings}
    events = ringevents.diff({k: v[1] for k, v in old.items()}, news, at=wall, as_of=now)
    relink = [r.id for r in rings if r.id in old]
    _write(store, rings=rings, removed=removed, relink=relink, events=events)
    if full:
        store._write(q.RING_EVENTS_PRUNE, {"before": wall - ringevents.KEEP_S})
    update = RingUpdate(
        full=full,
        examined_users=examined,
        rings=rings,
        created=[r.id for r in rings if r.id not in old],
        updated=[r.id for r in rings if r.id in old],
        removed=removed,
        events=len(events),
        seconds=time.perf_counter() - t0,
    )
    log.info(
        "graph.rings_detected",
        full=full,
        rings=len(rings),
        created=len(update.created),
        removed=len(removed),
        shape_confirmed=shape[0],
        shape_groups=shape[1],
        shape_flagged=shape_flagged,
        seconds=round(update.seconds, 3),
    )
    return update


def _ring(
    rid: str,
    comp: Component,
    stats: dict[str, list[Any]],
    *,
    now: float,
    wall: float,
    old: OldRings,
) -> Ring:
    # stats row: first_seen, last_seen, n, amount_sum, fraud_label, fraud_txn_n
    rows = [stats.get(m) or [now, now, 0, 0.0, None, 0] for m in comp.members]
    fraud_n = sum(1 for r in rows if counts_as_fraud(r[4], r[5]))
    size = len(comp.members)
    suspicious = comp.suspicious
    first = min(float(r[0]) for r in rows)
    last = max(float(r[1]) for r in rows)
    age = sum((now - float(r[0])) / 86400 for r in rows) / size
    dens = comp.density
    rate = fraud_n / size
    return Ring(
        id=rid,
        size=size,
        suspicious=suspicious,
        flagged_by=comp.flag,
        members=comp.members,
        shared_entities=[EntityRef(kind=k, id=e) for k, e in comp.entities],
        density=dens,
        fraud_n=fraud_n,
        fraud_rate=rate,
        amount=float(sum(float(r[3] or 0.0) for r in rows)),
        account_age_days=age,
        first_activity=first,
        last_activity=last,
        risk=risk(
            fraud_rate=rate, size=size, dens=dens, age_days=age, idle_days=(now - last) / 86400
        ),
        created_at=old[rid][0] if rid in old else wall,
        updated_at=wall,
    )


def _write(
    store: CypherBackend,
    *,
    rings: list[Ring],
    removed: list[str],
    relink: list[str],
    events: list[RingEvent],
) -> None:
    """Replace the rings in scope and record their events (one transaction on Neo4j)."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for i in range(0, len(events), 5_000):
        chunk = ringevents.props(events[i : i + 5_000])
        statements.append((q.RING_EVENTS_WRITE, {"events": chunk}))
    if removed:
        statements.append((q.RING_DELETE, {"ids": removed}))
    if relink:
        statements.append((q.RING_UNLINK, {"ids": relink}))
    for i in range(0, len(rings), 2_000):
        part = rings[i : i + 2_000]
        props = [
            {
                **r.model_dump(exclude={"shared_entities", "gcn_score"}),
                "shared": [f"{e.kind}:{e.id}" for e in r.shared_entities],
            }
            for r in part
        ]
        pairs = [[m, r.id] for r in part for m in r.members]
        statements.append((q.RING_UPSERT, {"rings": props}))
        statements.append((q.RING_LINK, {"pairs": pairs}))
    if statements:
        store._write_all(statements)
