"""Writing a batch of decision records to the graph: parse, convert, and keep what the store
refuses (or keeps failing on) out of the batch, so one bad record cannot block the stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from fraudring.contract.transaction import DecisionRecord
from fraudring.errors import InvalidInput, Unavailable
from fraudring.logs import get_logger
from fraudring.settings import Settings
from graph.schemas import IngestResult, TxnRecord
from workers.streams import Message

log = get_logger(__name__)


class IngestStore(Protocol):
    """The part of the graph store a batch write uses."""

    def ingest(self, records: Sequence[TxnRecord]) -> IngestResult: ...

    def is_empty(self) -> bool: ...


def parse_decision(msg: Message, *, settings: Settings | None = None) -> DecisionRecord:
    """The stream record checked by the contract, with this deployment's caps if given."""
    if msg.raw is None:
        raise ValueError("entry has no field 'd'")
    ctx = settings.contract_context() if settings is not None else None
    return DecisionRecord.model_validate(orjson.loads(msg.raw), context=ctx)


def to_record(d: DecisionRecord) -> TxnRecord:
    t = d.txn
    return TxnRecord(
        txn_id=t.txn_id,
        ts=t.epoch,
        user_id=t.user_id,
        card_id=t.card_id,
        device_id=t.device_id,
        ip=t.ip,
        merchant_id=t.merchant_id,
        amount=float(t.amount),
        payee_user_id=t.payee_user_id,
    )


@dataclass
class Ingested:
    ingested: int
    duplicates: int
    bad: list[tuple[Message, str]]
    done: list[tuple[Message, DecisionRecord]] = field(default_factory=list)


#: A message delivered this many times has failed (or its reader died) twice: it is written
#: alone, and quarantined if the store fails on it while it answered just before.
QUARANTINE_DELIVERIES = 3


def _store_answers(store: IngestStore) -> bool:
    try:
        store.is_empty()
    except Exception:  # anything: the question is only whether it answers
        return False
    return True


def quarantine(
    store: IngestStore, good: list[tuple[Message, DecisionRecord]]
) -> tuple[list[tuple[Message, DecisionRecord]], Ingested]:
    """Write each twice-failed message alone; one the store fails on (while it answered just
    before) is set aside with the reason, so a poison message cannot take the store down again
    after every restart. If the store does not answer at all, nothing is judged: raise.

    Returns the messages still to write and what the lone writes did (their kept messages are
    `done`)."""
    rest: list[tuple[Message, DecisionRecord]] = []
    out = Ingested(0, 0, [])
    for msg, d in good:
        if msg.deliveries < QUARANTINE_DELIVERIES:
            rest.append((msg, d))
            continue
        if not _store_answers(store):
            raise Unavailable("graph store unreachable; retried messages not judged")
        try:
            one = store.ingest([to_record(d)])
        except InvalidInput as exc:
            out.bad.append((msg, f"graph refused: {exc.message}"))
        except Exception as exc:
            reason = (
                f"quarantined after {msg.deliveries} deliveries: the graph store failed writing "
                f"it ({type(exc).__name__}: {exc})"
            )
            log.error("graph.message_quarantined", msg_id=msg.id, reason=reason)
            out.bad.append((msg, reason))
        else:
            out.done.append((msg, d))
            out.ingested += one.ingested
            out.duplicates += one.duplicates
    return rest, out


def ingest_records(
    store: IngestStore, good: list[tuple[Message, DecisionRecord]]
) -> tuple[list[tuple[Message, DecisionRecord]], Ingested]:
    """Ingest the batch; if the graph refuses it, find the refused records one by one."""
    rest, out = quarantine(store, good)
    kept = list(out.done)
    if not rest:
        return kept, out
    try:
        result = store.ingest([to_record(d) for _, d in rest])
        out.ingested += result.ingested
        out.duplicates += result.duplicates
        return kept + rest, out
    except InvalidInput:
        log.warning("graph.batch_refused", n=len(rest))
    for msg, d in rest:
        try:
            one = store.ingest([to_record(d)])
        except InvalidInput as exc:
            out.bad.append((msg, f"graph refused: {exc.message}"))
            continue
        kept.append((msg, d))
        out.ingested += one.ingested
        out.duplicates += one.duplicates
    return kept, out
