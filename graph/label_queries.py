"""The Cypher of rings grown from labels (`graph.evidence`): each kind's labelled share of its
recent ties, the entities that tie labelled users, and the rates a full run keeps for
incremental runs. Values travel as parameters; labels come from `schemas.LABELS`, constants."""

from __future__ import annotations

from typing import Final

from graph.schemas import LABELS, LINKED_KINDS

#: A labelled user: a fraud label of its own or on one of its transactions, unless labelled
#: legitimate itself (graph.ringrule.counts_as_fraud).
_BAD: Final = (
    "(coalesce(u.fraud_label, '') = 'fraud' OR "
    "(coalesce(u.fraud_txn_n, 0) > 0 AND coalesce(u.fraud_label, '') <> 'legitimate'))"
)
#: Which recent users an entity ties: a merchant its repeat customers, any other entity all.
_ETIED: Final = {k: ("r.n >= 2" if k == "merchant" else "true") for k in LINKED_KINDS}
_EVIDENCE = """
MATCH (x)<-[r:USED]-(u:User)
WHERE r.last_seen >= $since
WITH x, count(r) AS degree, sum(CASE WHEN {bad} THEN 1 ELSE 0 END) AS labelled
WHERE degree >= 2 AND labelled >= 1 AND (degree <= $cap OR labelled >= $share * degree)
MATCH (x)<-[r:USED]-(u:User)
WHERE r.last_seen >= $since AND {tied}
WITH x, degree, collect(u.id) AS users, collect(CASE WHEN {bad} THEN u.id END) AS bad,
  sum(r.n) AS uses, sum(CASE WHEN {bad} THEN r.n ELSE 0 END) AS bad_uses
WHERE size(bad) >= 1
RETURN x.id, users, bad, uses, bad_uses, degree - size(users)
"""


def evidence_links(*, page: str) -> dict[str, str]:
    """Per entity kind, one page of entities with 2..$cap recent users, or more where labelled
    users are at least $share of them (a crew's own proxy), of which at least one tied user is
    labelled: their tied users, the labelled ones, the transactions of each, and how many
    recent users they do not tie (a shop's one-off customers)."""
    return {
        k: f"MATCH (x:{LABELS[k]})\nWHERE {page}" + _EVIDENCE.format(tied=_ETIED[k], bad=_BAD)
        for k in LINKED_KINDS
    }


def evidence_totals(*, page: str) -> dict[str, str]:
    """Per entity kind, one page of recent ties and the labelled ones among them: the population
    an entity's labelled sharing is compared with (graph.ringevidence.label_rates)."""
    return {
        k: f"MATCH (x:{LABELS[k]})\nWHERE {page}\nMATCH (x)<-[r:USED]-(u:User)\n"
        f"WHERE r.last_seen >= $since AND {_ETIED[k]}\n"
        f"RETURN count(r), sum(CASE WHEN {_BAD} THEN 1 ELSE 0 END)"
        for k in LINKED_KINDS
    }


#: The same per given entities (incremental runs).
ENTITY_EVIDENCE: Final = {
    k: f"UNWIND $ids AS eid\nMATCH (x:{LABELS[k]} {{id: eid}})"
    + _EVIDENCE.format(tied=_ETIED[k], bad=_BAD)
    for k in LINKED_KINDS
}

#: Entities a set of users recently tied themselves to (see _ETIED).
USER_TIES: Final = """
UNWIND $ids AS uid
MATCH (u:User {id: uid})-[r:USED]->(x)
WHERE r.last_seen >= $since AND (NOT x:Merchant OR r.n >= 2)
RETURN DISTINCT labels(x)[0], x.id
"""

#: The labelled share of each kind's ties, measured by the last full run, for incremental runs.
RATES_WRITE: Final = """
MERGE (s:RingRates {id: 'rates'})
SET s.kinds = $kinds, s.rates = $rates, s.since = $since
"""
RATES_READ: Final = "MATCH (s:RingRates {id: 'rates'}) RETURN s.kinds, s.rates"
SHAPE_WRITE: Final = """
MERGE (s:RingRates {id: 'rates'})
SET s.shape_confirmed = $confirmed, s.shape_groups = $groups
"""
SHAPE_READ: Final = "MATCH (s:RingRates {id: 'rates'}) RETURN s.shape_confirmed, s.shape_groups"
