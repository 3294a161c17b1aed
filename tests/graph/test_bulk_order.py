"""A bulk load's batches grouped by account (`graph.ingest.by_account`)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from graph import ingest as ing


def _table(users: list[int]) -> pa.Table:
    n = len(users)
    return pa.table(
        {
            "txn_id": [f"t{i}" for i in range(n)],
            "ts": pa.array([1_700_000_000.0 + i for i in range(n)], pa.float64()),
            "user_id": [f"u{u}" for u in users],
            "card_id": [f"c{u}" for u in users],
            "device_id": [None if i % 3 else f"d{u % 4}" for i, u in enumerate(users)],
            "ip": [f"1.2.3.{u % 7}" for u in users],
            "merchant_id": [f"m{i % 5}" for i in range(n)],
            "amount": pa.array([float(i % 90) for i in range(n)], pa.float64()),
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=400),
    st.integers(1, 60),
    st.integers(1, 150),
)
def test_every_transaction_once_and_a_users_window_in_one_batch(
    users: list[int], part_rows: int, batch_size: int
) -> None:
    table = _table(users)
    window = 3 * batch_size
    parts = table.to_batches(max_chunksize=part_rows)
    # where each window ends: whole parts until it holds at least `window` rows
    ends: list[int] = []
    rows = 0
    for p in parts:
        rows += p.num_rows
        if rows - (ends[-1] if ends else 0) >= window:
            ends.append(rows)
    frames = [b.frame for b in ing.by_account(parts, window=window, batch_size=batch_size)]
    got = pl.concat(frames)
    assert sorted(got["txn_id"].to_list()) == sorted(table.column("txn_id").to_pylist())
    owner: dict[tuple[int, str], int] = {}
    for i, f in enumerate(frames):
        assert f["ts"].is_sorted()  # time order kept inside a batch
        for txn, user in zip(f["txn_id"].to_list(), f["user_id"].to_list(), strict=True):
            w = sum(int(txn[1:]) >= e for e in ends)
            assert owner.setdefault((w, user), i) == i, f"{user} split within window {w}"


def test_a_window_is_cut_into_batches_of_about_batch_size_with_no_user_in_two() -> None:
    users = [i % 1000 for i in range(10_000)]
    batches = list(ing.by_account([_table(users)], window=10_000, batch_size=2_500))
    assert len(batches) == 4
    assert all(1_500 < len(b) < 3_500 for b in batches)
    owners: dict[str, int] = {}
    for i, b in enumerate(batches):
        for u in b.frame["user_id"].unique().to_list():
            assert owners.setdefault(u, i) == i, f"{u} in batches {owners[u]} and {i}"
