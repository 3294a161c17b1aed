"""The repository interface, and its implementation over any Cypher backend.

`CypherStore` holds everything both backends share (all statements come from graph.queries and
graph.label_queries); a backend supplies only a handful of primitives: run a read, run a write,
run several writes in one transaction, its schema statements and how to page over nodes.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import polars as pl

from fraudring import streamids
from fraudring.errors import Conflict, InvalidInput
from fraudring.logs import get_logger
from graph import ingest as ing
from graph import queries as q
from graph.history import LedgerTxn, RingTimeline, TxnPage
from graph.inquiry import InquiryMixin
from graph.investigation import EntityEvidence, RingEvidence
from graph.schemas import (
    EntityKind,
    EntityRef,
    GraphExport,
    GraphNotFound,
    GraphPath,
    IngestResult,
    LabelResult,
    LabelValue,
    Neighbourhood,
    Ring,
    RingEvent,
    RingParams,
    RingUpdate,
    TxnRecord,
    check_kind,
    require_id,
)

log = get_logger(__name__)
LEDGER_SCHEMA: dict[str, Any] = {
    "txn_id": pl.String,
    "user_id": pl.String,
    "card_id": pl.String,
    "merchant_id": pl.String,
    "ts": pl.Float64,
    "amount": pl.Float64,
    "label": pl.String,
    "labelled_at": pl.Float64,
}
#: Rows of one ledger slice, about (slices are cut by time, so as even as the traffic).
LEDGER_SLICE_ROWS = 500_000
#: The ledger's columns as read, before the floats are cast.
LEDGER_TEXT: dict[str, Any] = {
    k: pl.String if v == pl.Float64 else v for k, v in LEDGER_SCHEMA.items()
}


class GraphStore(Protocol):
    backend: str
    ring_params: RingParams

    def describe(self) -> str:
        """One line: backend, server version and graph size, for `fraudring doctor`."""
        ...

    def close(self) -> None: ...
    def ensure_schema(self) -> None: ...
    def ingest(self, records: Sequence[TxnRecord] | ing.Batch) -> IngestResult: ...
    def ingest_many(
        self, batches: Iterable[Sequence[TxnRecord] | ing.Batch], *, on_batch: Any = None
    ) -> IngestResult: ...
    def label(
        self, *, kind: str, id: str, label: LabelValue, by: str, at: float
    ) -> LabelResult: ...
    def detect_rings(
        self,
        *,
        touched_users: Collection[str] | None = None,
        params: RingParams | None = None,
        now: float | None = None,
    ) -> RingUpdate: ...
    def txn_users(self, txn_id: str) -> set[str]: ...
    def unlabel(self, *, kind: str, id: str, by: str, at: float) -> LabelResult: ...
    def current_label(self, *, kind: str, id: str) -> str | None: ...
    def ring(self, ring_id: str) -> Ring: ...
    def top_rings(self, n: int = 20) -> list[Ring]: ...
    def all_rings(self, *, min_size: int = 1) -> list[Ring]: ...
    def is_empty(self) -> bool: ...
    def neighbourhood(
        self,
        kind: str,
        id: str,
        *,
        hops: int = 2,
        max_nodes: int = 200,
        follow: Collection[str] | None = None,
    ) -> Neighbourhood: ...
    def path(self, *, src: EntityRef, dst: EntityRef) -> GraphPath:
        """Through entities that tie few accounts first, flagged when only a hub joins them."""
        ...

    def export(self, *, chunk_size: int = 200_000) -> GraphExport: ...
    def ledger_since(self, *, since: float) -> pl.DataFrame: ...
    def newest_ts(self) -> float | None: ...
    def known(self, kind: str, ids: Collection[str]) -> set[str]: ...
    def ring_evidence(self, ring_id: str) -> RingEvidence: ...
    def entity_evidence(self, kind: str, id: str) -> EntityEvidence: ...
    def payee_accounts(self, merchant_ids: Collection[str]) -> set[str]: ...
    def transactions(
        self, kind: str, id: str, *, limit: int = 50, before: float | None = None
    ) -> TxnPage: ...
    def ring_timeline(self, ring_id: str) -> RingTimeline: ...
    def ring_events(self, ring_id: str) -> list[RingEvent]: ...
    def txns_by_id(self, ids: list[str]) -> dict[str, LedgerTxn]: ...
    def replay_point(self, stream: str) -> str | None: ...
    def record_replay_point(self, stream: str, next_id: str) -> None: ...


class CypherStore(InquiryMixin):
    """Store logic over the primitives a backend subclass provides."""

    #: Reading the ledger and writing a batch race only with another writer of the same rows.
    ingest_retries = 5

    def _ingest_prepare(self, fresh: ing.Batch) -> tuple[Any, int]:
        """A batch of new transactions ready to send, and the distinct edges it writes."""
        params, edges = ing.parameters(fresh)
        return self._prepare(q.INGEST, params), edges

    def _ingest_send(self, prepared: Any) -> int:
        """Write a prepared batch atomically: the transactions written, 0 when any of them was
        already stored (then nothing of the batch is written)."""
        rows = self._send(prepared)
        return int(rows[0][0]) if rows else 0

    # --- ingest -------------------------------------------------------------------------------
    def ingest_many(
        self, batches: Iterable[Sequence[TxnRecord] | ing.Batch], *, on_batch: Any = None
    ) -> IngestResult:
        """Ingest a stream of batches, preparing batch k+1 while the server writes batch k.

        Each batch keeps the guarantees of `ingest` (atomic, idempotent): a batch whose guard
        fails because an earlier batch of the stream wrote some of its transactions meanwhile
        is redone through `ingest`. `on_batch(result)` is called after each batch.
        """
        t0 = time.perf_counter()
        total = IngestResult(received=0, ingested=0, duplicates=0)

        def prepare(records: Sequence[TxnRecord] | ing.Batch) -> tuple[ing.Batch, Any, int]:
            # Optimistic: no ledger read first. A batch with stored transactions fails the
            # statement's guard and is redone through `ingest`, which filters them out.
            batch = records if isinstance(records, ing.Batch) else ing.from_records(records)
            fresh = ing.dedupe(batch)
            if len(fresh) == 0:
                return batch, None, 0
            prepared, edges = self._ingest_prepare(fresh)
            return batch, prepared, edges

        with ThreadPoolExecutor(max_workers=1) as pool:
            it = iter(batches)
            first = next(it, None)
            pending = pool.submit(prepare, first) if first is not None else None
            while pending is not None:
                batch, prepared, edges = pending.result()
                nxt = next(it, None)
                pending = pool.submit(prepare, nxt) if nxt is not None else None
                t1 = time.perf_counter()
                written = self._ingest_send(prepared) if prepared is not None else 0
                if prepared is None or written:
                    res = IngestResult(
                        received=len(batch),
                        ingested=written,
                        duplicates=len(batch) - written,
                        edges_written=edges if written else 0,
                        seconds=time.perf_counter() - t1,
                    )
                else:
                    res = self.ingest(batch)
                total.received += res.received
                total.ingested += res.ingested
                total.duplicates += res.duplicates
                total.edges_written += res.edges_written
                if on_batch is not None:
                    on_batch(res)
        total.seconds = time.perf_counter() - t0
        return total

    def _known(self, ids: list[str]) -> set[str]:
        return {row[0] for row in self._read(q.KNOWN_TXNS, {"ids": ids})}

    def known(self, kind: str, ids: Collection[str]) -> set[str]:
        """Which of `ids` the graph holds as `kind` ("txn" or an entity kind)."""
        wanted = [i for i in ids if require_id(i, field_name="id")]
        query = q.KNOWN_TXNS if kind == "txn" else q.KNOWN_NODES[check_kind(kind)]
        found: set[str] = set()
        for start in range(0, len(wanted), 10_000):
            rows = self._read(query, {"ids": wanted[start : start + 10_000]})
            found |= {str(row[0]) for row in rows}
        return found

    def ingest(self, records: Sequence[TxnRecord] | ing.Batch) -> IngestResult:
        """Write a batch; idempotent by txn_id and atomic (one statement, guarded by the ledger).

        Transactions already in the ledger (or repeated in the batch) are skipped. If another
        writer stores some of the batch between our ledger read and the write, the guard turns
        the write into a no-op and the batch is re-read and retried, so retries converge.
        """
        t0 = time.perf_counter()
        batch = records if isinstance(records, ing.Batch) else ing.from_records(records)
        received = len(batch)
        batch = ing.dedupe(batch)
        written, edges = 0, 0
        for _attempt in range(self.ingest_retries):
            fresh = ing.without(batch, self._known(batch.txn_ids))
            if len(fresh) == 0:
                break
            prepared, edges = self._ingest_prepare(fresh)
            written = self._ingest_send(prepared)
            if written:
                break
        else:
            raise Conflict("ingest: the batch kept racing with another writer; retry later")
        res = IngestResult(
            received=received,
            ingested=written,
            duplicates=received - written,
            edges_written=edges if written else 0,
            seconds=time.perf_counter() - t0,
        )
        log.debug("graph.ingested", **res.model_dump())
        return res

    # --- labels -------------------------------------------------------------------------------
    def txn_users(self, txn_id: str) -> set[str]:
        """The user of a transaction and a transfer's payee (none when it is not in the graph):
        a transaction's label changes their rings, and a label names only the transaction."""
        require_id(txn_id, field_name="txn_id")
        rows = self._read(q.TXN_USER, {"id": txn_id})
        return {str(u) for u in rows[0] if u is not None} if rows else set()

    def label(self, *, kind: str, id: str, label: LabelValue, by: str, at: float) -> LabelResult:
        """Mark a transaction or a node fraud / legitimate; the same label twice changes nothing.

        A transaction label moves the fraud/legit counts of the user, its four edges and the
        entities at their ends; a node label is a property of that node only.
        """
        if label not in ("fraud", "legitimate"):
            raise InvalidInput(f"label: must be fraud or legitimate, got {label!r}")
        return self._relabel(kind=kind, id=id, label=label, by=by, at=at)

    def unlabel(self, *, kind: str, id: str, by: str, at: float) -> LabelResult:
        """Take a label back (an investigator's undo): the counts move back as they came."""
        return self._relabel(kind=kind, id=id, label=None, by=by, at=at)

    def current_label(self, *, kind: str, id: str) -> str | None:
        """The label a transaction or node carries now (None: none), 404 when not there."""
        require_id(id, field_name="id")
        if kind == "txn":
            rows = self._read(q.TXN_LABEL_READ, {"id": id})
            if not rows:
                raise GraphNotFound(f"txn {id!r} is not in the graph (not ingested yet?)")
            return rows[0][5] or None
        kind = check_kind(kind)
        rows = self._read(q.NODE_LABEL_READ[kind], {"id": id})
        if not rows:
            raise GraphNotFound(f"{kind} {id!r} is not in the graph")
        return rows[0][0] or None

    def _relabel(
        self, *, kind: str, id: str, label: LabelValue | None, by: str, at: float
    ) -> LabelResult:
        require_id(id, field_name="id")
        require_id(by, field_name="by")
        if kind == "txn":
            rows = self._read(q.TXN_LABEL_READ, {"id": id})
            if not rows:
                raise GraphNotFound(f"txn {id!r} is not in the graph (not ingested yet?)")
            old = rows[0][5] or ""
        else:
            kind = check_kind(kind)
            rows = self._read(q.NODE_LABEL_READ[kind], {"id": id})
            if not rows:
                raise GraphNotFound(f"{kind} {id!r} is not in the graph")
            old = rows[0][0] or ""
        node_kind: EntityKind = "user" if kind == "txn" else kind  # type: ignore[assignment]
        if old == (label or ""):
            return LabelResult(kind=node_kind, id=id, label=label, changed=False)
        params = {"id": id, "old": old, "label": label, "by": by, "at": float(at)}
        if kind == "txn":
            params["df"] = int(label == "fraud") - int(old == "fraud")
            params["dl"] = int(label == "legitimate") - int(old == "legitimate")
            out = self._write(q.TXN_LABEL_WRITE, params)
            user, merchant, payee = rows[0][0], rows[0][4], rows[0][6]
            if out and int(out[0][0]) and payee is not None and payee != user:
                self._write(
                    q.TXN_PAYEE_LABEL,
                    {"payee": payee, "merchant": merchant, "df": params["df"], "dl": params["dl"]},
                )
        else:
            out = self._write(q.NODE_LABEL_WRITE[kind], params)
        edges = int(out[0][0]) if out else 0
        log.info("graph.labelled", kind=kind, id=id, label=label, by=by)
        return LabelResult(
            kind=node_kind,
            id=id,
            label=label,
            changed=True,
            edges_updated=edges if kind == "txn" else 0,
        )

    # --- rings --------------------------------------------------------------------------------
    def detect_rings(
        self,
        *,
        touched_users: Collection[str] | None = None,
        params: RingParams | None = None,
        now: float | None = None,
    ) -> RingUpdate:
        """Find rings (all of them, or those around `touched_users`); see graph.rings."""
        from graph.rings import detect

        params = params or self.ring_params
        return detect(self, touched_users=touched_users, params=params, now=now)

    def top_rings(self, n: int = 20) -> list[Ring]:
        from graph.rings import ring_from_props

        if not 1 <= n <= 10_000:
            raise InvalidInput("n: must be between 1 and 10000")
        return [ring_from_props(r[0]) for r in self._read(q.TOP_RINGS, {"n": n})]

    def is_empty(self) -> bool:
        return not self._read(q.ANY_NODE)

    def all_rings(self, *, min_size: int = 1) -> list[Ring]:
        """Every ring of at least `min_size` members, in no particular order (reports, audits)."""
        from graph.rings import ring_from_props

        return [ring_from_props(r[0]) for r in self._read(q.RINGS_OF_SIZE, {"min_size": min_size})]

    # --- investigator queries: graph.inquiry (a mixin) -----------------------------------------
    # --- export -------------------------------------------------------------------------------
    def export(self, *, chunk_size: int = 200_000) -> GraphExport:
        from graph.export import export

        return export(self, chunk_size=chunk_size)

    def ledger_since(self, *, since: float) -> pl.DataFrame:
        """Transactions with ``ts >= since`` (epoch s), with their label and when it arrived:
        columns txn_id, user_id, card_id, merchant_id, ts, amount, label, labelled_at.

        Read in time slices (`_ledger_slice`), `read_parallelism` at once: most of the time
        goes into decoding millions of cells, not into the server's range scan. A slice holds
        about LEDGER_SLICE_ROWS rows at most, which bounds what the server holds for a reply
        (a joined column of millions of rows costs it gigabytes)."""
        span = self._read(q.LEDGER_SPAN, {"since": float(since)})
        if not span or span[0][0] is None:
            return pl.DataFrame(schema=LEDGER_SCHEMA)
        first, newest = float(span[0][0]), float(span[0][1])
        n = max(self.read_parallelism, -(-int(span[0][2]) // LEDGER_SLICE_ROWS))
        # the outer bounds are the caller's and past the newest: min/max come back rounded
        inner = [max(first + (newest - first) * i / n, since) for i in range(1, n)]
        cuts = [float(since), *inner]
        cuts.append(newest + 1.0)

        with ThreadPoolExecutor(max_workers=self.read_parallelism) as pool:
            parts = list(pool.map(lambda i: self._ledger_slice(cuts[i], cuts[i + 1]), range(n)))
        return pl.concat(parts).with_columns(
            pl.col(k).cast(pl.Float64) for k, v in LEDGER_SCHEMA.items() if v == pl.Float64
        )

    def _ledger_slice(self, since: float, until: float) -> pl.DataFrame:
        """One time slice of the ledger, floats as text (`_read_scalars` may send them so):
        `ledger_since` casts them in one pass."""
        rows = self._read_scalars(q.LEDGER_SLICE, {"since": since, "until": until})
        return pl.DataFrame(rows, schema=LEDGER_TEXT, orient="row", strict=False)

    def newest_ts(self) -> float | None:
        """The newest transaction's ts (epoch s): the stream's clock, None on an empty graph."""
        rows = self._read(q.NEWEST_TS)
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # --- replay point -------------------------------------------------------------------------
    def replay_point(self, stream: str) -> str | None:
        """The first entry of `stream` not recorded as applied (every entry with a smaller id
        is in the graph), None when the graph never recorded one."""
        rows = self._read(q.REPLAY_POINT_READ, {"stream": stream})
        if not rows or rows[0][0] is None:
            return None
        return f"{int(rows[0][0])}-{int(rows[0][1])}"

    def record_replay_point(self, stream: str, next_id: str) -> None:
        """Record that every entry of `stream` before `next_id` is applied (never moves back)."""
        ms, seq = streamids.parse(next_id)
        self._write(
            q.REPLAY_POINT_WRITE, {"stream": stream, "ms": ms, "seq": seq, "at": time.time()}
        )
