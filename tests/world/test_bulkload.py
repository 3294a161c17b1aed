"""`world.bulkload.load_world`: a world into the store as of a moment, then rings."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from graph.repository import CypherStore
from world.bulkload import load_world
from world.io import read_world
from world.simulate import generate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bulk") / "w"
    generate(out=out, transactions=6_000, seed=5, days=20, fraud_rate=0.01, progress=False)
    return out


def test_load_as_of_keeps_only_what_was_known_and_is_idempotent(
    store: CypherStore, world: Path
) -> None:
    w = read_world(world)
    ts = w.transactions.column("ts")
    cut = pc.min(ts).as_py().timestamp() + 12 * 86400
    seen: dict[str, int] = {}
    totals: dict[str, set[int]] = {}

    def progress(stage: str, n: int, total: int) -> None:
        seen[stage] = seen.get(stage, 0) + n
        totals.setdefault(stage, set()).add(total)

    res = load_world(store, world, as_of=cut, on_progress=progress)
    early = [t.timestamp() < cut for t in ts.to_pylist()]
    assert res.transactions == sum(early) == res.ingested == seen["transactions"]
    known = [t.timestamp() <= cut for t in w.labels.column("label_ts").to_pylist()]
    assert 0 < res.labels <= sum(known) and seen.get("labels", 0) == res.labels
    # each bar knows its end: the rows before the cut, the labels known by then, one detection
    assert totals == {
        "transactions": {res.transactions},
        "labels": {res.labels},
        "ring detection": {1},
    }
    assert seen["ring detection"] == 1
    assert res.rings == len(store.all_rings())
    again = load_world(store, world, as_of=cut)  # a load that stopped halfway is run again
    assert again.ingested == 0 and again.transactions == res.transactions
    full = load_world(store, world)
    assert full.transactions == w.transactions.num_rows
    assert full.ingested == w.transactions.num_rows - res.transactions
