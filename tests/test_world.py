"""The synthetic world: determinism, layout, planted structure, labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from fraudring.errors import InvalidInput
from world import schema
from world.io import WorldNotFound, iter_transactions, read_world
from world.simulate import generate

FILES = (schema.TRANSACTIONS_FILE, schema.LABELS_FILE, schema.TRUTH_FILE, schema.META_FILE)


def _digests(path: Path) -> dict[str, str]:
    return {f: hashlib.sha256((path / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    generate(out=out, transactions=12_000, seed=11, progress=False)
    return out


def test_same_seed_byte_identical_and_other_seed_differs(small: Path, tmp_path: Path) -> None:
    generate(out=tmp_path / "a", transactions=12_000, seed=11, progress=False)
    generate(out=tmp_path / "b", transactions=12_000, seed=12, progress=False)
    assert _digests(tmp_path / "a") == _digests(small)
    other = _digests(tmp_path / "b")
    assert all(other[f] != _digests(small)[f] for f in FILES)


def test_layout_matches_schema_and_is_sorted(small: Path) -> None:
    w = read_world(small)
    assert w.transactions.schema.equals(schema.TRANSACTIONS)
    assert w.labels.schema.equals(schema.LABELS)
    assert w.truth.schema.equals(schema.TRUTH)
    assert w.transactions.num_rows == 12_000 == w.truth.num_rows
    assert w.transactions.column("txn_id").equals(w.truth.column("txn_id"))
    ts = w.transactions.column("ts").cast(pa.int64()).to_numpy()
    assert (ts[1:] >= ts[:-1]).all()
    assert len(set(w.transactions.column("txn_id").to_pylist())) == 12_000
    batches = list(iter_transactions(small, batch_size=5_000))
    assert [b.num_rows for b in batches] == [5_000, 5_000, 2_000]


def test_bad_parameters_and_missing_world(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="difficulty"):
        generate(out=tmp_path, transactions=1_000, seed=1, difficulty="medium", progress=False)
    with pytest.raises(InvalidInput, match="transactions"):
        generate(out=tmp_path, transactions=10, seed=1, progress=False)
    with pytest.raises(WorldNotFound, match="not a world directory"):
        read_world(tmp_path / "nothing")
