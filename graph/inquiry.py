"""The investigator's reads of a store: neighbourhoods, paths, evidence and history.

A base of `graph.repository.CypherStore` over the backend primitives, so the store keeps one
interface while this half of it lives apart; the logic is in the modules each method
names.
"""

from __future__ import annotations

from collections.abc import Collection

from graph import evidence_queries as eq
from graph import queries as q
from graph.cypher import CypherBackend
from graph.history import LedgerTxn, RingTimeline, TxnPage
from graph.investigation import EntityEvidence, RingEvidence
from graph.schemas import (
    EntityRef,
    GraphNotFound,
    GraphPath,
    Neighbourhood,
    Ring,
    RingEvent,
    RingParams,
    require_id,
)


class InquiryMixin(CypherBackend):
    """Reads for investigators over the backend's primitives."""

    #: The ring rule of this deployment (`graph.service.open_store` sets it from the settings).
    ring_params = RingParams()

    def ring(self, ring_id: str) -> Ring:
        from graph.rings import ring_from_props

        require_id(ring_id, field_name="ring_id")
        rows = self._read(q.RING_BY_ID, {"id": ring_id})
        if not rows:
            raise GraphNotFound(f"ring {ring_id!r} not found")
        return ring_from_props(rows[0][0])

    def neighbourhood(
        self,
        kind: str,
        id: str,
        *,
        hops: int = 2,
        max_nodes: int = 200,
        follow: Collection[str] | None = None,
    ) -> Neighbourhood:
        """Breadth-first k-hop neighbourhood, stopping at `max_nodes` (graph.neighbourhood)."""
        from graph.neighbourhood import neighbourhood

        return neighbourhood(self, kind, id, hops=hops, max_nodes=max_nodes, follow=follow)

    def path(self, *, src: EntityRef, dst: EntityRef) -> GraphPath:
        """A shortest path of USED edges (at most `evidence_queries.PATH_MAX_HOPS`), through
        devices, IPs and cards of few accounts when one exists, else through a hub
        (graph.paths)."""
        from graph.paths import path

        params = self.ring_params
        return path(
            self, src=src, dst=dst, hub_cap=params.hub_cap, merchant_cap=params.merchant_cap
        )

    def ring_evidence(self, ring_id: str) -> RingEvidence:
        """Links ranked by the risk they carry, risk parts, homes, typology."""
        from graph.investigation import ring_evidence

        return ring_evidence(self, self.ring(ring_id), params=self.ring_params)

    def payee_accounts(self, merchant_ids: Collection[str]) -> set[str]:
        """Which of these merchant nodes are payees' accounts (the counterparty of transfers),
        so listings call them accounts, not merchants."""
        if not merchant_ids:
            return set()
        return {r[0] for r in self._read(eq.PAYEE_ACCOUNTS, {"ids": sorted(set(merchant_ids))})}

    def entity_evidence(self, kind: str, id: str) -> EntityEvidence:
        from graph.investigation import entity_evidence

        return entity_evidence(self, kind, id)

    def transactions(
        self, kind: str, id: str, *, limit: int = 50, before: float | None = None
    ) -> TxnPage:
        """The ledger rows of an entity, newest first, a page at a time (graph.history)."""
        from graph.history import transactions

        return transactions(self, kind, id, limit=limit, before=before)

    def ring_timeline(self, ring_id: str) -> RingTimeline:
        """A ring's activity and recorded events; a ring merged away or dissolved still has
        its events (the last says where it went)."""
        from graph.history import ring_event, timeline

        changes = self.ring_events(ring_id)
        try:
            ev = self.ring_evidence(ring_id)
        except GraphNotFound:
            if not changes:
                raise
            events = [ring_event(c) for c in changes]
            return RingTimeline(ring_id=ring_id, events=events, days=[], changes=changes)
        joined = {m.id: m.joined for m in ev.members if m.joined is not None}
        return timeline(self, ev.ring, joined=joined, changes=changes)

    def ring_events(self, ring_id: str) -> list[RingEvent]:
        """What the detection runs saw happen to a ring, oldest first (graph.ringevents)."""
        from graph.ringevents import from_props

        require_id(ring_id, field_name="ring_id")
        rows = self._read(q.RING_EVENTS_READ, {"id": ring_id})
        return sorted((from_props(r[0]) for r in rows), key=lambda e: (e.at, e.seq))

    def txns_by_id(self, ids: list[str]) -> dict[str, LedgerTxn]:
        from graph.history import txns_by_id

        return txns_by_id(self, ids)
