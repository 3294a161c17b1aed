"""Reading a world directory (written by simulate or a loader) as Arrow tables or batches."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from fraudring.contract.ids import PAYEE_FIELD
from fraudring.errors import InvalidInput, NotFound
from world import schema

if TYPE_CHECKING:
    import pandas as pd

#: Fixed writer options: with the same input, the same bytes.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": True}


class WorldNotFound(NotFound):
    code = "world_not_found"


@dataclass(frozen=True)
class World:
    path: Path
    transactions: pa.Table
    labels: pa.Table
    truth: pa.Table
    meta: dict[str, Any]


def _need(path: Path, name: str) -> Path:
    file = Path(path) / name
    if not file.is_file():
        raise WorldNotFound(
            f"{file} is missing: not a world directory (make one with `fraudring simulate`)"
        )
    return file


def read_meta(path: Path) -> dict[str, Any]:
    file = _need(path, schema.META_FILE)
    try:
        meta: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file} is not valid JSON: {exc}") from exc
    return meta


def read_world(path: Path) -> World:
    """The whole world in memory; fine up to a few million transactions."""
    path = Path(path)
    return World(
        path=path,
        transactions=_table(_need(path, schema.TRANSACTIONS_FILE)),
        labels=_table(_need(path, schema.LABELS_FILE)),
        truth=_table(_need(path, schema.TRUTH_FILE)),
        meta=read_meta(path),
    )


@contextlib.contextmanager
def parquet_errors(file: Path) -> Iterator[None]:
    """A file that is not Parquet (or not readable) as one InvalidInput naming it, whichever
    reader (pyarrow, pandas) the caller uses."""
    try:
        yield
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{file} is not a readable Parquet file: {exc}") from None


def _table(file: Path) -> pa.Table:
    with parquet_errors(file):
        return pq.read_table(file)


def iter_transactions(
    path: Path, *, batch_size: int = 65_536, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Transactions in `ts` order, a batch at a time, without loading the file."""
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    file = pq.ParquetFile(_need(Path(path), schema.TRANSACTIONS_FILE))
    yield from file.iter_batches(batch_size=batch_size, columns=columns)


def iter_truth(path: Path, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """Truth rows in the same order as the transactions."""
    file = pq.ParquetFile(_need(Path(path), schema.TRUTH_FILE))
    yield from file.iter_batches(batch_size=batch_size)


def ring_members(truth: pa.Table, transactions: pa.Table) -> dict[str, set[str]]:
    """Planted ring id -> its member users (the contract's definition): the payers marked
    members, and the payee of each of its fraudulent transfers (the account a ring's fraud
    feeds is the ring's, whether its payer is a member or a victim; a member's everyday
    transfer to a relative or a landlord makes them no member)."""
    ring = truth.column("ring_id").to_pylist()
    member = truth.column("user_is_ring_member").to_pylist()
    names_t = truth.column_names
    fraud = truth.column("is_fraud").to_pylist() if "is_fraud" in names_t else [True] * len(ring)
    users = transactions.column("user_id").to_pylist()
    names = transactions.column_names
    payees = transactions.column(PAYEE_FIELD).to_pylist() if PAYEE_FIELD in names else []
    out: dict[str, set[str]] = {}
    for i, (r, m, u) in enumerate(zip(ring, member, users, strict=True)):
        if r is None:
            continue
        if m:
            out.setdefault(r, set()).add(u)
        if payees and payees[i] is not None and fraud[i]:
            out.setdefault(r, set()).add(payees[i])
    return out


def frame_ring_members(truth: pd.DataFrame, txns: pd.DataFrame) -> dict[str, set[str]]:
    """`ring_members` of a world's truth and transactions as data frames (truth rows matched
    to transactions by id; a transaction without one is in no ring)."""
    t = truth.set_index("txn_id").reindex(txns["txn_id"]).reset_index()
    for col in ("user_is_ring_member", "is_fraud"):
        t[col] = t[col].fillna(False).astype(bool)
    ids = [c for c in ("user_id", PAYEE_FIELD) if c in txns.columns]
    cols = ["ring_id", "user_is_ring_member", "is_fraud"]
    return ring_members(
        pa.Table.from_pandas(t[cols], preserve_index=False),
        pa.Table.from_pandas(txns[ids], preserve_index=False),
    )


def match_rings(planted: dict[str, set[str]], found: list[set[str]]) -> tuple[int, int, int]:
    """(planted rings of size >= 3 matched by a found ring with member Jaccard >= 0.5, those
    planted rings, found rings with no planted member at all): the contract's ring recall."""
    targets = [m for m in planted.values() if len(m) >= 3]
    members = set().union(*planted.values()) if planted else set()
    hit = sum(any(len(p & f) / len(p | f) >= 0.5 for f in found if p & f) for p in targets)
    false = sum(not (f & members) for f in found)
    return hit, len(targets), false


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    text = json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=True)
    (out / schema.META_FILE).write_text(text + "\n", encoding="utf-8")


def write_world(
    out: Path, *, transactions: pa.Table, labels: pa.Table, truth: pa.Table, meta: dict[str, Any]
) -> None:
    """Write a whole (in-memory) world; the generator streams instead."""
    out.mkdir(parents=True, exist_ok=True)
    for table, name in (
        (transactions, schema.TRANSACTIONS_FILE),
        (labels, schema.LABELS_FILE),
        (truth, schema.TRUTH_FILE),
    ):
        pq.write_table(table, out / name, **PARQUET_OPTIONS)
    write_meta(out, meta)
