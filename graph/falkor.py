"""FalkorDB backend (the embedded default).

One FalkorDB query is atomic, so an ingest batch (one statement) is all-or-nothing. Ring writes
take several statements in sequence; they are idempotent, so re-running detection converges
after a failure in the middle.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import falkordb
import numpy as np
import numpy.typing as npt
import polars as pl
import redis

from fraudring.errors import Unavailable
from fraudring.logs import get_logger
from graph import queries as q
from graph.cypher import Rows
from graph.repository import LEDGER_TEXT, CypherStore
from graph.schemas import LABELS

log = get_logger(__name__)
_SEP = "\x1f"  # the unit separator: never in an id (ids are printable)

#: Client errors that mean the server is not there (redis-py's TimeoutError is no ConnectionError).
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: How long a query waits out a server that answers BUSY (preparing the fork of a snapshot or an
#: AOF rewrite, which takes seconds on a graph of gigabytes; or a long script): BUSY means the
#: command did not run, so sending it again is safe.
BUSY_WAIT_S = 120.0
T = TypeVar("T")


def _unbusy(call: Callable[[], T]) -> T:
    """`call`, sent again while the server answers BUSY (for at most BUSY_WAIT_S)."""
    deadline, pause = time.monotonic() + BUSY_WAIT_S, 0.05
    while True:
        try:
            return call()
        except redis.exceptions.ResponseError as exc:  # BusyLoadingError is not BUSY
            if not str(exc).startswith("BUSY ") or time.monotonic() > deadline:
                raise
            log.warning("graph.server_busy", error=str(exc), retry_in_s=pause)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Map client errors of a read: unreachable -> Unavailable; a graph that does not exist
    yet -> the error is swallowed and the caller's fallback (no rows) runs."""
    try:
        yield
    except UNREACHABLE as exc:
        raise Unavailable(f"graph store unreachable: {exc}") from None
    except redis.exceptions.ResponseError as exc:
        if "empty key" not in str(exc):
            raise


class FalkorStore(CypherStore):
    backend = "falkordb"
    numeric_keys = True
    read_parallelism = 4  # read queries run on the server's thread pool

    def __init__(self, url: str, *, graph_name: str) -> None:
        parts = urlsplit(url)
        try:  # the client connects at once (it asks the server whether it is a sentinel)
            self._db = falkordb.FalkorDB(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 6379,
                username=parts.username,
                password=parts.password,
                ssl=parts.scheme == "falkordbs",
                socket_timeout=300,
            )
        except UNREACHABLE as exc:
            raise Unavailable(f"graph store unreachable: {exc}") from None
        self.url = url
        self.graph_name = graph_name
        self.graph = self._db.select_graph(graph_name)

    # --- primitives ---------------------------------------------------------------------------
    def _read(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        with _reading():
            return _unbusy(lambda: self.graph.ro_query(query, params).result_set)
        return []  # the graph does not exist yet: nothing to read

    def _read_scalars(self, query: str, params: dict[str, Any]) -> Rows:
        """The verbose reply instead of the client's compact one: integers, strings and nulls
        arrive as RESP values already decoded by hiredis, floats as text. The client would
        parse every cell in Python, which is most of a 2-hop neighbourhood's time (200 rows of
        11 values: about 1.5 ms of 3)."""
        header = self.graph._build_params_header(params)
        with _reading():
            reply = _unbusy(
                lambda: self._db.connection.execute_command(
                    "GRAPH.RO_QUERY", self.graph_name, header + query
                )
            )
            return reply[1]  # type: ignore[no-any-return]
        return []

    def _write(self, query: str, params: dict[str, Any] | None = None) -> Rows:
        try:
            return _unbusy(lambda: self.graph.query(query, params).result_set)
        except UNREACHABLE as exc:
            raise Unavailable(f"graph store unreachable: {exc}") from None

    def _write_all(self, statements: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for query, params in statements:
            self._write(query, params)

    def drop(self) -> None:
        """Delete this graph (a FalkorDB graph is one key of its own; nothing else is touched)."""
        with contextlib.suppress(redis.exceptions.ResponseError):  # no such graph yet
            self.graph.delete()

    def _prepare(self, query: str, params: dict[str, Any]) -> Any:
        """The parameter header, built here so a pipelined ingest encodes the next batch while
        the server runs the current one (the client would otherwise do it inside `query`)."""
        return self.graph._build_params_header(params) + query

    def _send(self, prepared: Any) -> Rows:
        return self._write(prepared)

    def _pages(self, var: str, *, page_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """Internal-id ranges: FalkorDB turns `id(x)` bounds into a seek, not a scan."""
        rows = self._read("MATCH (n) RETURN max(id(n))")
        top = rows[0][0] if rows and rows[0][0] is not None else -1
        for lo in range(0, int(top) + 1, page_size):
            yield f"id({var}) >= $lo AND id({var}) < $hi", {"lo": lo, "hi": lo + page_size}

    def _ledger_slice(self, since: float, until: float) -> pl.DataFrame:
        """A ledger slice as one joined string per column (`queries.LEDGER_SLICE_JOINED`):
        a statistics refresh reads the whole window, and splitting 8 strings costs the client a
        sixth of parsing millions of cells. Ids are printable, so the unit separator cannot
        occur in one; should a column still split into another length, the rows are read."""
        params = {"since": since, "until": until, "sep": _SEP}
        rows = self._read_scalars(q.LEDGER_SLICE_JOINED, params)
        if not rows:  # no such graph yet
            return pl.DataFrame(schema=LEDGER_TEXT)
        texts = rows[0]
        columns = {  # no ids: no rows (a one-row column of '' is a null)
            name: text.split(_SEP) if texts[0] else []
            for name, text in zip(LEDGER_TEXT, texts, strict=True)
        }
        n = len(next(iter(columns.values())))
        if any(len(v) != n for v in columns.values()):
            return super()._ledger_slice(since, until)
        frame = pl.DataFrame(columns, schema=LEDGER_TEXT)  # every column text, as read
        return frame.with_columns(pl.when(pl.col(k) != "").then(pl.col(k)) for k in LEDGER_TEXT)

    def _columns(
        self,
        match: str,
        exprs: Sequence[str],
        params: dict[str, Any],
        *,
        strings: Sequence[str] = (),
    ) -> tuple[list[npt.NDArray[np.float64]], list[list[str]]]:
        """Numbers come back as one joined string per column: parsing millions of result
        cells one by one in the client is what would otherwise dominate the export. Values are
        sent as integers in thousandths (FalkorDB formats floats several times slower)."""
        parts = [
            f"string.join(collect(coalesce(toString(toInteger(({e}) * 1000)), 'nan')), ',')"
            for e in exprs
        ]
        parts += [f"collect({s})" for s in strings]
        rows = self._read(match + " RETURN " + ", ".join(parts), params)
        row = rows[0] if rows else [""] * len(exprs) + [[] for _ in strings]
        nums = [
            np.array(text.split(","), dtype=np.float64) / 1000 if text else np.empty(0)
            for text in row[: len(exprs)]
        ]
        return nums, [list(v) for v in row[len(exprs) :]]

    # --- schema -------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Range index + unique constraint on `id` of every label, `Txn.ts` and `Txn.user`; safe
        to repeat.

        A label whose nodes include an id with an outer space (written before ids were
        checked) gets no constraint, with an error in the log: FalkorDB crashes building it."""
        constrained = {row[1] for row in self._read(q.FALKOR_CONSTRAINTS) if row[0] == "UNIQUE"}
        for label in [*LABELS.values(), "Txn", "Ring", "RingEvent"]:
            try:
                self.graph.create_node_range_index(label, "id")
            except redis.exceptions.ResponseError as exc:
                if "already indexed" not in str(exc):
                    raise
            if label in constrained:
                continue
            bad = self._read(q.OUTER_SPACE_IDS.format(label=label))
            if bad and bad[0][0]:
                log.error(
                    "graph.constraint_skipped",
                    label=label,
                    ids_with_outer_spaces=int(bad[0][0]),
                    fix="remove or rename those nodes, then restart",
                )
                continue
            try:
                self.graph._create_constraint("UNIQUE", "NODE", label, "id")
            except redis.exceptions.ResponseError as exc:
                if "already exists" not in str(exc).lower():
                    raise
        # the entity statistics read the ledger by time, investigators an account's history and
        # a ring's events
        for label, prop in (("Txn", "ts"), ("Txn", "user"), ("RingEvent", "ring")):
            try:
                self.graph.create_node_range_index(label, prop)
            except redis.exceptions.ResponseError as exc:
                if "already indexed" not in str(exc):
                    raise

    def describe(self) -> str:
        self._db.connection.ping()
        if self.graph_name not in self._db.list_graphs():
            return f"falkordb graph {self.graph_name!r} (empty)"
        res = self.graph.ro_query("MATCH (n) RETURN count(n)")
        return f"falkordb graph {self.graph_name!r}, {res.result_set[0][0]} nodes"

    def close(self) -> None:
        self._db.connection.close()
