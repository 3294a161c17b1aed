"""Neo4j backend (production), through the official driver.

A read is one auto-commit query (one round trip; retried here on transient errors), a write
a managed transaction (`execute_query`, retried by the driver); several ring writes share one
`session.execute_write` transaction. An ingest
batch is the statements of `graph.neo4j_ingest` in one transaction; the unique constraint on
`Txn.id` turns a transaction already stored (a retry, or a race between two writers) into a
`ConstraintError` that rolls the batch back, after which it is re-read against the ledger and
retried (see `CypherStore.ingest`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import neo4j
from neo4j.exceptions import ConstraintError, ServiceUnavailable, SessionExpired, TransientError

from fraudring.errors import Unavailable
from fraudring.logs import get_logger
from graph import gds, neo4j_ingest
from graph import ingest as ing
from graph.cypher import Rows
from graph.repository import CypherStore
from graph.schemas import LABELS

log = get_logger(__name__)
#: Tries of a read before the store reports itself unavailable (50, 100, 200 ms apart).
READ_ATTEMPTS = 4


class Neo4jStore(CypherStore):
    backend = "neo4j"
    numeric_keys = False
    key_function = "elementId"

    def __init__(
        self, url: str, *, user: str, password: str, database: str | None, use_gds: bool = False
    ) -> None:
        # notifications off: the server would attach hints (e.g. nulls skipped by count) to
        # replies, and the driver log each one as a warning
        self._driver = neo4j.GraphDatabase.driver(
            url, auth=(user, password), notifications_min_severity="OFF"
        )
        self.database = database
        #: Ring components by GDS WCC where the server has it (False: in Python, as FalkorDB).
        self.use_gds = use_gds
        self._gds: bool | None = None

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
        """An auto-commit read: one round trip (RUN and PULL pipelined), where a managed
        transaction adds its COMMIT's. Reads are idempotent, so a transient failure or a
        stale pooled connection (a restarted server) is simply tried again."""
        for attempt in range(READ_ATTEMPTS):
            try:
                with self._driver.session(
                    database=self.database, default_access_mode=neo4j.READ_ACCESS
                ) as session:
                    return [list(r.values()) for r in session.run(neo4j.Query(query), params)]
            except (TransientError, SessionExpired, ServiceUnavailable) as exc:
                if attempt == READ_ATTEMPTS - 1:
                    raise Unavailable(f"graph store unreachable: {exc}") from None
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _write(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        return self._run(query, params, neo4j.RoutingControl.WRITE)

    def _ingest_prepare(self, fresh: ing.Batch) -> tuple[Any, int]:
        plan = neo4j_ingest.plan(fresh)
        return plan, plan.edges

    def _ingest_send(self, prepared: Any) -> int:
        """The batch's statements in one transaction; a transaction already stored violates
        the unique `Txn.id` and rolls the batch back (0: the caller re-reads and retries)."""
        plan: neo4j_ingest.Plan = prepared
        try:
            self._write_all(plan.statements)
        except ConstraintError:
            return 0
        return plan.txns

    def _write_all(self, statements: Sequence[tuple[str, dict[str, Any]]]) -> None:
        def work(tx: neo4j.ManagedTransaction) -> None:
            for query, params in statements:
                tx.run(query, params).consume()

        try:
            with self._driver.session(database=self.database) as session:
                session.execute_write(work)
        except ServiceUnavailable as exc:
            raise Unavailable(f"graph store unreachable: {exc}") from None

    def in_db_components(self) -> bool:
        """With `use_gds` (setting `graph_gds`) and Graph Data Science on the server,
        components run there."""
        if not self.use_gds:
            return False
        if self._gds is None:
            rows = self._read(gds.AVAILABLE)
            self._gds = bool(rows and rows[0][0])
            log.info("graph.gds", available=self._gds)
        return self._gds

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
