"""Turning a batch of transactions into the parameters of one ingest statement.

The batch is validated as a whole (first bad id wins, named with its row), deduplicated by
txn_id, and pre-aggregated per user and per (user, kind, entity), so the database does one MERGE
per distinct node and edge instead of one per transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from fraudring.contract.ids import (
    FAST_ID_PATTERN,
    ID_FIELDS,
    MANY_DIGITS_PATTERN,
    PAYEE_FIELD,
    first_problems,
)
from graph.schemas import LINKED_KINDS, RECEIPT_AMOUNT, InvalidGraphId, TxnRecord

ID_COLUMNS = ("txn_id", *ID_FIELDS.values(), PAYEE_FIELD)
#: The ledger's columns (a Txn node's properties, in the statements' order).
LEDGER_COLUMNS = (
    "txn_id", "user_id", "card_id", "device_id", "ip", "merchant_id", "ts", "amount", PAYEE_FIELD,
)  # fmt: skip
#: Transactions per statement for bulk loads (history backfills). Each write statement carries
#: a cost that grows with the graph (FalkorDB folds its pending matrix changes in at the end of
#: the statement), so on a 1M-transaction graph 100k-row statements take 30-40% less server time
#: per transaction than 50k ones; the price is that readers wait for one statement (a few
#: seconds). The streaming workers keep small batches (FRAUDRING_INGEST_BATCH).
BULK_BATCH = 100_000
#: Transactions a bulk load regroups by account at a time (`by_account`): a few hundred MB.
BULK_WINDOW = 1_000_000
_ENTITY_COLUMN = {k: ID_FIELDS[k] for k in LINKED_KINDS}


@dataclass
class Batch:
    """A batch as columns; `frame` has txn_id, ts (epoch s), the entity ids and amount."""

    frame: pl.DataFrame

    def __len__(self) -> int:
        return self.frame.height

    @property
    def txn_ids(self) -> list[str]:
        return self.frame["txn_id"].to_list()


def from_records(records: Sequence[TxnRecord]) -> Batch:
    cols: dict[str, list[Any]] = {c: [] for c in (*ID_COLUMNS, "ts", "amount")}
    for r in records:
        cols["txn_id"].append(r.txn_id)
        cols["ts"].append(r.ts)
        cols["user_id"].append(r.user_id)
        cols["card_id"].append(r.card_id)
        cols["device_id"].append(r.device_id)
        cols["ip"].append(r.ip)
        cols["merchant_id"].append(r.merchant_id)
        cols["payee_user_id"].append(r.payee_user_id)
        cols["amount"].append(r.amount)
    return _frame(cols)


def from_arrow(batch: pa.RecordBatch | pa.Table) -> Batch:
    """A world `transactions.parquet` batch (ts as a UTC timestamp) as an ingest batch."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _from_polars(frame)


def _from_polars(frame: pl.DataFrame) -> Batch:
    ts = frame["ts"]
    if ts.dtype != pl.Float64:
        ts = ts.dt.epoch("us").cast(pl.Float64) / 1e6
    none = pl.repeat(None, frame.height, dtype=pl.String, eager=True)  # a world before payees
    cols: dict[str, Any] = {c: frame[c] if c in frame.columns else none for c in ID_COLUMNS}
    cols["ts"], cols["amount"] = ts, frame["amount"].cast(pl.Float64)
    return _frame(cols)


def by_account(
    parts: Iterable[pa.RecordBatch | pa.Table],
    *,
    window: int = BULK_WINDOW,
    batch_size: int = BULK_BATCH,
) -> Iterator[Batch]:
    """A bulk load's batches, each with every transaction its users have in a window of about
    `window` rows (users split by a hash of their id, seed 0).

    Time-ordered batches write a user's edge again in every batch that repeats it, and updating
    an edge's totals is a third of Neo4j's ingest (docs/neo4j.md); grouped by account, an edge is
    written once per window. What is stored does not depend on the order: edge and user totals,
    first and last seen, and the ledger come out the same.
    """
    pending: list[pa.Table] = []
    rows = 0
    for part in parts:
        table = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
        pending.append(table)
        rows += table.num_rows
        if rows >= window:
            yield from _regroup(pa.concat_tables(pending), batch_size=batch_size)
            pending, rows = [], 0
    if rows:
        yield from _regroup(pa.concat_tables(pending), batch_size=batch_size)


def _regroup(table: pa.Table, *, batch_size: int) -> Iterator[Batch]:
    n = math.ceil(table.num_rows / batch_size)
    if n <= 1:
        yield from_arrow(table)
        return
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    bucket = (pl.col("user_id").hash(seed=0) % n).alias("_bucket")
    for part in frame.with_columns(bucket).partition_by("_bucket", include_key=False):
        yield _from_polars(part)


def _frame(cols: dict[str, Any]) -> Batch:
    schema = {c: pl.String for c in ID_COLUMNS} | {"ts": pl.Float64, "amount": pl.Float64}
    try:
        frame = pl.DataFrame(cols, schema=schema)
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise InvalidGraphId(f"transactions: not ingestible ({exc})") from None
    # A transfer without a counterparty is paid to the payee's own account (the contract's rule).
    frame = frame.with_columns(pl.coalesce("merchant_id", "payee_user_id").alias("merchant_id"))
    validate(frame)
    return Batch(frame)


def validate(frame: pl.DataFrame) -> None:
    """Reject the batch on the first bad or missing required id (fraudring.contract's rule),
    named with its row. Printable ASCII ids short of a card number's digits pass in polars; only
    the rest go through the Python check."""
    for col in ID_COLUMNS:
        series = frame[col]
        required = col in ("txn_id", "user_id")
        fast = series.str.contains(FAST_ID_PATTERN) & ~series.str.contains(MANY_DIGITS_PATTERN)
        suspect = (~fast).fill_null(False)
        problems = first_problems(series.filter(suspect).to_list()) if suspect.any() else {}
        bad = series.is_in(list(problems)).fill_null(False) if problems else suspect & False
        if required:
            bad = bad | series.is_null()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = series[row]
            reason = "required" if value is None else problems[value]
            txn = frame["txn_id"][row]
            where = f"row {row}" if col == "txn_id" else f"row {row}, txn_id {txn!r}"
            reason = f"{reason} ({where}); nothing of this batch was written"
            raise InvalidGraphId.on(col, reason, row=row)
    for col in ("ts", "amount"):
        values = frame[col]
        if values.is_null().any() or not np.isfinite(values.to_numpy()).all():
            raise InvalidGraphId.on(col, "missing or not a finite number")


def dedupe(batch: Batch) -> Batch:
    """First occurrence of each txn_id (a batch may carry a retry of its own rows)."""
    return Batch(batch.frame.unique(subset="txn_id", keep="first", maintain_order=True))


def without(batch: Batch, known: set[str]) -> Batch:
    if not known:
        return batch
    return Batch(batch.frame.filter(~pl.col("txn_id").is_in(list(known))))


def activity(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """First and last time, count and amount per group: what an ACTIVITY or link edge keeps."""
    return frame.group_by(keys, maintain_order=True).agg(
        pl.col("ts").min().alias("first"),
        pl.col("ts").max().alias("last"),
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("amount").sum().alias("amount"),
    )


def with_payees(frame: pl.DataFrame) -> pl.DataFrame:
    """The batch's activity rows: each transaction, and for each transfer a row of its payee at
    the transfer's counterparty (no other entity, amount 0). A receipt thus counts in the payee's
    activity and ties the payee to the node its payers share, which is what links the accounts
    of a laundering cycle; the ledger keeps one row per transaction."""
    transfers = frame.filter(pl.col("payee_user_id").is_not_null())
    if transfers.height == 0:
        return frame
    receipts = transfers.with_columns(
        pl.col("payee_user_id").alias("user_id"),
        *(pl.lit(None, dtype=pl.String).alias(c) for c in ("card_id", "device_id", "ip")),
        pl.lit(RECEIPT_AMOUNT).alias("amount"),
    )
    return pl.concat([frame, receipts])


def parameters(batch: Batch) -> tuple[dict[str, Any], int]:
    """The INGEST statement's parameters and the number of distinct edges they carry."""
    params: dict[str, Any] = {"txn_ids": batch.frame["txn_id"].to_list()}
    ledger = batch.frame.select(LEDGER_COLUMNS).rows()
    frame = with_payees(batch.frame)
    users = [[*row, [], [], [], []] for row in activity(frame, ["user_id"]).rows()]
    slot = {row[0]: row for row in users}
    edges = 0
    for i, kind in enumerate(LINKED_KINDS):
        col = _ENTITY_COLUMN[kind]
        present = frame.filter(pl.col(col).is_not_null())
        for user, *edge in activity(present, ["user_id", col]).rows():
            slot[user][5 + i].append(edge)
            edges += 1
    params["users"] = users
    params["txns"] = ledger
    return params, edges
