"""Bulk-load a world directory (simulated or loaded data) into the graph store, as of a moment.

What the store would hold had it run until ``as_of``: the transactions before it, the labels
that had arrived by then (chargebacks and confirmed legitimate ones), then one full ring
detection. Ingest goes in `graph.ingest.BULK_BATCH` statements grouped by account
(`graph.ingest.by_account`), idempotently, so a load that stopped halfway can simply be run
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from fraudring.logs import get_logger
from graph import ingest as ing
from graph import labelbulk
from world import schema
from world.io import iter_transactions, read_world

if TYPE_CHECKING:
    from graph.repository import CypherStore
    from graph.schemas import IngestResult, LabelValue, RingUpdate

log = get_logger(__name__)


@dataclass
class BulkLoad:
    transactions: int
    ingested: int
    labels: int
    rings: int
    suspicious: int


def load_world(
    store: CypherStore,
    data: Path,
    *,
    as_of: float | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> BulkLoad:
    """Ingest `data` up to ``as_of`` (epoch seconds; None: everything), apply the labels known
    by then, detect rings. ``on_progress(stage, done, total)`` reports each step of the
    transactions, the labels and the ring detection (one step)."""
    world = read_world(data)
    limit = None if as_of is None else pa.scalar(int(as_of * 1_000_000), type=schema.TS)
    txns = world.transactions
    if limit is not None:
        txns = txns.filter(pc.less(txns.column("ts"), limit))

    def parts() -> Iterator[pa.Table]:
        for rb in iter_transactions(data, batch_size=ing.BULK_BATCH):
            part = pa.Table.from_batches([rb])
            if limit is not None:
                part = part.filter(pc.less(part.column("ts"), limit))
            if part.num_rows:
                yield part

    def done(res: IngestResult) -> None:
        if on_progress:
            on_progress("transactions", res.received, txns.num_rows)

    res = store.ingest_many(ing.by_account(parts()), on_batch=done)
    total, ingested = res.received, res.ingested
    labels = world.labels
    if limit is not None:
        labels = labels.filter(pc.less_equal(labels.column("label_ts"), limit))
    seen = set(txns.column("txn_id").to_pylist())
    rows: list[tuple[str, LabelValue, float]] = []
    for txn_id, value, at in zip(
        labels.column("txn_id").to_pylist(),
        labels.column("label").to_pylist(),
        labels.column("label_ts").to_pylist(),
        strict=True,
    ):
        if txn_id in seen:
            rows.append((txn_id, "fraud" if value == 1 else "legitimate", at.timestamp()))
    n_labels = len(rows)
    for i in range(0, n_labels, labelbulk.CHUNK):  # in arrival order: the last label stands
        part = rows[i : i + labelbulk.CHUNK]
        labelbulk.label_txns(store, part, by="chargeback")
        if on_progress:
            on_progress("labels", len(part), n_labels)
    if on_progress:
        on_progress("ring detection", 0, 1)
    update: RingUpdate = store.detect_rings()
    if on_progress:
        on_progress("ring detection", 1, 1)
    log.info(
        "graph.bulk_loaded",
        path=str(data),
        transactions=total,
        labels=n_labels,
        rings=len(update.rings),
    )
    return BulkLoad(
        transactions=total,
        ingested=ingested,
        labels=n_labels,
        rings=len(update.rings),
        suspicious=sum(r.suspicious for r in update.rings),
    )
