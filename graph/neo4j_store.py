"""Neo4j backend (production), through the official driver.

Each statement runs in a managed transaction (`execute_query`, retried by the driver on
transient errors); several ring writes share one `session.execute_write` transaction. The
ingest statement is one transaction per batch; the unique constraint on `Txn.id` turns a race
between two writers of the same transaction into a `ConstraintError`, after which the batch is
re-read against the ledger and retried (see `CypherStore.ingest`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import neo4j
from neo4j.exceptions import ConstraintError, ServiceUnavailable

from fraudring.errors import Unavailable
from graph import queries as q
from graph.repository import CypherStore, Rows
from graph.schemas import LABELS


class Neo4jStore(CypherStore):
    backend = "neo4j"
    numeric_keys = False
    key_function = "elementId"

    def __init__(self, url: str, *, user: str, password: str, database: str | None) -> None:
        # notifications off: the server would attach hints (e.g. nulls skipped by count) to
        # replies, and the driver log each one as a warning
        self._driver = neo4j.GraphDatabase.driver(
            url, auth=(user, password), notifications_min_severity="OFF"
        )
        self.database = database

    def _run(
        self, query: str, params: dict[str, Any] | None, routing: neo4j.RoutingControl
    ) -> Rows:
        try:
            records, _, _ = self._driver.execute_query(
                neo4j.Query(query),
                params or {},
                routing_=routing,
                database_=self.database,
            )
        except ServiceUnavailable as exc:
            raise Unavailable(f"graph store unreachable: {exc}") from None
        return [list(r.values()) for r in records]

    def _read(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        return self._run(query, params, neo4j.RoutingControl.READ)

    def _write(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        try:
            return self._run(query, params, neo4j.RoutingControl.WRITE)
        except ConstraintError:
            if query == q.INGEST:
                return []  # another writer stored part of the batch: re-read and retry
            raise

    def _write_all(self, statements: Sequence[tuple[str, dict[str, Any]]]) -> None:
        def work(tx: neo4j.ManagedTransaction) -> None:
            for query, params in statements:
                tx.run(query, params).consume()

        try:
            with self._driver.session(database=self.database) as session:
                session.execute_write(work)
        except ServiceUnavailable as exc:
            raise Unavailable(f"graph store unreachable: {exc}") from None

    def _pages(self, var: str, *, page_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """One page: the driver already streams results in fetch-size chunks."""
        yield "true", {}

    def ensure_schema(self) -> None:
        """A uniqueness constraint (which brings its index) per label; IF NOT EXISTS repeats."""
        for label in [*LABELS.values(), "Txn", "Ring", "RingEvent"]:
            name = f"fraudring_{label.lower()}_id"
            self._write(
                f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE"
            )
        self._write("CREATE INDEX fraudring_txn_ts IF NOT EXISTS FOR (t:Txn) ON (t.ts)")
        self._write("CREATE INDEX fraudring_txn_user IF NOT EXISTS FOR (t:Txn) ON (t.user)")
        self._write(
            "CREATE INDEX fraudring_ringevent_ring IF NOT EXISTS FOR (e:RingEvent) ON (e.ring)"
        )

    def describe(self) -> str:
        info = self._driver.get_server_info()
        rows = self._read("MATCH (n) RETURN count(n) AS n")
        return f"neo4j {info.agent}, {rows[0][0]} nodes"

    def close(self) -> None:
        self._driver.close()
