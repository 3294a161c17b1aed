"""Why a ring is a ring: the links that tie its members, ranked by how much of its risk each
carries, the parts of the risk score, the homes involved, the typology it resembles, and a
narrative an investigator can paste into a case; and the same for one entity.

A link's weight is what the ring would lose without it: the risk of the largest group still tied
together once that entity is taken away, against the whole ring's (leave-one-out). A device that
alone holds two halves of a ring together outranks one of five IPs the same pairs share.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from graph import evidence_queries as eq
from graph import queries as q
from graph.ringrule import Component, Links, components, counts_as_fraud, density, risk_terms
from graph.schemas import (
    KIND_OF_LABEL,
    EntityKind,
    GraphNotFound,
    Ring,
    RingParams,
    check_kind,
    is_receipt,
    require_id,
)
from graph.typology import TypologyScore, typology_scores

if TYPE_CHECKING:
    from graph.cypher import CypherBackend


class EvidenceLink(BaseModel):
    kind: EntityKind
    id: str
    members: list[str] = Field(description="ring members this entity ties")
    others: int = Field(description="users of the entity outside the ring")
    first_seen: float
    last_seen: float
    txn_n: int = Field(description="the members' transactions through it")
    fraud_txn_n: int
    amount: float
    label: str | None = None
    risk_drop: float = Field(description="ring risk lost without this link (leave-one-out)")
    left_apart: int = Field(description="members no longer tied to the rest without it")
    account_of: str | None = Field(
        default=None,
        description="a payee's account (the counterparty of transfers): the member it belongs "
        "to, whose receipts there carry no amount",
    )

    @property
    def name(self) -> str:
        """How an investigator reads it: a payee's account is no merchant."""
        if self.account_of:
            return f"account {self.id} (of {self.account_of})"
        return f"{self.kind} {self.id}"


class RiskComponents(BaseModel):
    """Weighted terms of `graph.ringrule.risk`; `total` = recency x their sum."""

    fraud_rate: float
    size: float
    density: float
    youth: float
    recency: float = Field(description="multiplier: exp(-idle days / 14)")
    total: float


class MemberEvidence(BaseModel):
    id: str
    fraud: bool
    fraud_label: str | None
    fraud_txn_n: int
    txn_n: int
    amount: float
    first_seen: float | None
    last_seen: float | None
    joined: float | None = Field(description="first use of an entity that ties it in")
    home: str | None
    entities: dict[str, int] = Field(description="distinct entities used, per kind")


class RingEvidence(BaseModel):
    ring: Ring
    links: list[EvidenceLink] = Field(description="largest risk_drop first")
    components: RiskComponents
    homes: dict[str, list[str]] = Field(description="home IP -> members based there")
    typology: str
    typologies: list[TypologyScore]
    members: list[MemberEvidence]
    narrative: str


class EntityEvidence(BaseModel):
    kind: EntityKind
    id: str
    label: str | None
    labelled_by: str | None
    labelled_at: float | None
    fraud_txn_n: int
    legit_txn_n: int
    txn_n: int
    first_seen: float | None
    last_seen: float | None
    degree: int = Field(description="distinct users (for a user: distinct entities)")
    rings: list[str]
    narrative: str


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def ring_evidence(
    store: CypherBackend, ring: Ring, *, params: RingParams | None = None
) -> RingEvidence:
    params = params or RingParams()
    members = set(ring.members)
    raw: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for e in ring.shared_entities:
        by_kind[e.kind].append(e.id)
    for kind, ids in by_kind.items():
        for row in store._read(eq.EVIDENCE_LINKS[kind], {"ids": ids}):
            raw[(kind, row[0])].append(row)
    links: Links = {key: sorted(r[1] for r in rows if r[1] in members) for key, rows in raw.items()}
    links = {k: v for k, v in links.items() if len(v) >= 2}
    stats = {r[0]: r[1:] for r in store._read(q.USER_STATS, {"ids": ring.members})}
    fraud = {m for m in ring.members if (s := stats.get(m)) and counts_as_fraud(s[4], s[5])}
    whole = Component(ring.members, sorted(links))
    full = _base(whole, links, fraud, ring)
    recency = ring.risk / full if full > 0 else 0.0
    out: list[EvidenceLink] = []
    for key, rows in raw.items():
        tied = [r for r in rows if r[1] in members]
        if not tied:
            continue
        # a payee's receipts at its account: transactions counted, no amount (amounts are > 0)
        receipts = [r for r in tied if key[0] == "merchant" and is_receipt(r[6])]
        rest = {k: v for k, v in links.items() if k != key}
        parts = components(rest, min_size=2)
        biggest = max(parts, key=lambda c: len(c.members), default=None)
        left = _base(biggest, rest, fraud, ring) if biggest else 0.0
        kept = len(biggest.members) if biggest else 0
        out.append(
            EvidenceLink(
                kind=check_kind(key[0]),
                id=key[1],
                members=sorted(r[1] for r in tied),
                others=len(rows) - len(tied),
                first_seen=min(float(r[2] or 0) for r in tied),
                last_seen=max(float(r[3] or 0) for r in tied),
                txn_n=sum(int(r[4] or 0) for r in tied if r not in receipts),
                fraud_txn_n=sum(int(r[5] or 0) for r in tied if r not in receipts),
                amount=round(sum(float(r[6] or 0) for r in tied), 2),
                label=tied[0][7],
                risk_drop=round(max(recency * (full - left), 0.0), 4),
                left_apart=len(ring.members) - kept,
                account_of=receipts[0][1] if receipts else None,
            )
        )
    out.sort(key=lambda x: (-x.risk_drop, -x.left_apart, -len(x.members), x.kind, x.id))
    terms = risk_terms(
        fraud_rate=ring.fraud_rate,
        size=ring.size,
        dens=ring.density,
        age_days=ring.account_age_days,
    )
    comp = RiskComponents(
        **{k: round(v * recency, 4) for k, v in terms.items()},
        recency=round(recency, 4),
        total=round(ring.risk, 4),
    )
    counts = _kind_counts(store, ring.members)
    homes = _homes(store, ring.members, params=params)
    joined: dict[str, float] = {}
    for link in out:
        for m in link.members:
            rows = [r for r in raw[(link.kind, link.id)] if r[1] == m]
            t = float(rows[0][2] or 0) if rows else None
            if t is not None and (m not in joined or t < joined[m]):
                joined[m] = t
    mems = []
    for m in ring.members:
        s = stats.get(m) or [None, None, 0, 0.0, None, 0]
        mems.append(
            MemberEvidence(
                id=m,
                fraud=m in fraud,
                fraud_label=s[4],
                fraud_txn_n=int(s[5] or 0),
                txn_n=int(s[2] or 0),
                amount=round(float(s[3] or 0), 2),
                first_seen=_f(s[0]),
                last_seen=_f(s[1]),
                joined=joined.get(m),
                home=homes.get(m),
                entities=counts.get(m, {}),
            )
        )
    rows = store._read(eq.MEMBER_MERCHANTS, {"ids": ring.members})
    shops = [(r[0], int(r[1]), int(r[2])) for r in rows]
    # payees' accounts, whether they tie the ring or only take its money
    accounts = {link.id for link in out if link.account_of} | {r[0] for r in rows if r[3]}
    typos = typology_scores(ring, links, counts, shops=shops, accounts=accounts)
    by_home: dict[str, list[str]] = defaultdict(list)
    for m, ip in sorted(homes.items()):
        by_home[ip].append(m)
    ev = RingEvidence(
        ring=ring,
        links=out,
        components=comp,
        homes=dict(by_home),
        typology=typos[0].typology,
        typologies=typos,
        members=sorted(mems, key=lambda x: (x.joined or math.inf, x.id)),
        narrative="",
    )
    ev.narrative = narrative(ev)
    return ev


def _base(comp: Component | None, links: Links, fraud: set[str], ring: Ring) -> float:
    """The risk's weighted sum (before recency) of what a group keeps of the ring's evidence:
    its fraud members and linked pairs counted over the whole ring (a ratio over the group
    alone would let a smaller, tighter remainder look riskier than the ring)."""
    if comp is None or not comp.members:
        return 0.0
    size = len(comp.members)
    pairs = density(comp, links) * size * (size - 1) / 2
    whole = ring.size * (ring.size - 1) / 2
    terms = risk_terms(
        fraud_rate=sum(m in fraud for m in comp.members) / ring.size,
        size=size,
        dens=pairs / whole if whole else 0.0,
        age_days=ring.account_age_days,
    )
    return sum(terms.values())


def _kind_counts(store: CypherBackend, users: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for uid, label, n in store._read(eq.USER_KIND_COUNTS, {"ids": users}):
        out[uid][KIND_OF_LABEL[label]] = int(n)
    return out


def _homes(store: CypherBackend, users: list[str], *, params: RingParams) -> dict[str, str]:
    from graph.rings import _bases

    rows = store._read(q.NEWEST_TS)
    now = float(rows[0][0]) if rows and rows[0][0] is not None else 0.0
    return _bases(store, users, since=now - params.window_days * 86400, cap=params.hub_cap)


def _day(ts: float | None) -> str:
    from datetime import UTC, datetime

    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def narrative(ev: RingEvidence) -> str:
    r = ev.ring
    top = ev.links[:3]
    lines = [
        f"Ring {r.id}: {r.size} accounts, {r.fraud_n} with fraud on record "
        f"({int(100 * r.fraud_rate + 0.5)}%), risk {r.risk:.2f}, "
        f"active {_day(r.first_activity)} to {_day(r.last_activity)}, "
        f"${r.amount:,.2f} spent in all.",
        f"They are tied by {len(ev.links)} shared entities across {len(ev.homes)} homes "
        f"and resemble {_article(ev.typology)} {ev.typology.replace('_', ' ')} ring "
        f"({'; '.join(ev.typologies[0].reasons)}).",
    ]
    for link in top:
        lines.append(
            f"- {link.name} ties {len(link.members)} members "
            f"({', '.join(link.members[:6])}{', ...' if len(link.members) > 6 else ''}) from "
            f"{_day(link.first_seen)} to {_day(link.last_seen)}, {link.txn_n} transactions; "
            f"without it the ring's risk drops by {link.risk_drop:.2f}"
            + (f" and {link.left_apart} members fall away." if link.left_apart else ".")
        )
    c = ev.components
    lines.append(
        f"Risk {c.total:.2f} = recency {c.recency:.2f} applied to fraud rate {c.fraud_rate:.2f}"
        f" + size {c.size:.2f} + density {c.density:.2f} + young accounts {c.youth:.2f} "
        "(already weighted)."
    )
    return "\n".join(lines)


def entity_evidence(store: CypherBackend, kind: str, id: str) -> EntityEvidence:
    kind = check_kind(kind)
    require_id(id, field_name="id")
    rows = store._read(eq.ENTITY_SUMMARY[kind], {"id": id})
    if not rows:
        raise GraphNotFound(f"{kind} {id!r} is not in the graph")
    lab, by, at, ftx, ltx, n, first, last, degree = rows[0]
    if kind == "user":
        rings = [r[0] for r in store._read(q.USER_RINGS, {"ids": [id]})]
    else:
        rings = [r[0] for r in store._read(eq.RINGS_SHARING, {"ref": f"{kind}:{id}"})]
    text = (
        f"{kind} {id}: {int(n or 0)} transactions from {_day(_f(first))} to {_day(_f(last))}, "
        f"{int(degree or 0)} {'entities used' if kind == 'user' else 'accounts'}, "
        f"{int(ftx or 0)} transactions labelled fraud"
        + (f", labelled {lab} by {by} on {_day(_f(at))}" if lab else "")
        + (f"; in ring {', '.join(rings)}." if rings else "; in no ring.")
    )
    return EntityEvidence(
        kind=kind,
        id=id,
        label=lab,
        labelled_by=by,
        labelled_at=_f(at),
        fraud_txn_n=int(ftx or 0),
        legit_txn_n=int(ltx or 0),
        txn_n=int(n or 0),
        first_seen=_f(first),
        last_seen=_f(last),
        degree=int(degree or 0),
        rings=rings,
        narrative=text,
    )
