"""FalkorDB and Neo4j give the same answers on one simulated world: the same rings under the same
ids, the same export, ledger, neighbourhoods and paths. (tests/graph/test_repository.py checks each store
against hand-built expectations; this checks them against each other on a realistic graph.)"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pytest
from polars.testing import assert_frame_equal

from fraudring.settings import load_settings
from graph import ingest as ing
from graph.neo4j_store import Neo4jStore
from graph.repository import CypherStore
from graph.schemas import EntityRef, GraphExport, LabelValue
from graph.service import open_store
from tests.conftest import neo4j_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from world.simulate import generate

    out = tmp_path_factory.mktemp("world") / "w"
    generate(out=out, transactions=20_000, seed=11, fraud_rate=0.01, progress=False)
    return out


@pytest.fixture
def both(
    world_dir: Path, falkor_url: str, graph_name: str, neo4j_clean: dict[str, str]
) -> Iterator[tuple[CypherStore, CypherStore]]:
    """The same world, with the labels known at its end, loaded into each store (in two
    orders)."""
    from world.io import iter_transactions, read_world

    world = read_world(world_dir)
    end = pc.max(world.transactions.column("ts"))
    labels = world.labels.filter(pc.less_equal(world.labels.column("label_ts"), end))
    falkor_settings = load_settings(env="test", api_keys={})
    with (
        open_store(falkor_url, settings=falkor_settings, graph_name=graph_name) as falkor,
        open_store(neo4j_clean["NEO4J_URI"], settings=neo4j_settings(neo4j_clean)) as neo,
    ):
        assert isinstance(falkor, CypherStore) and isinstance(neo, CypherStore)
        for store in (falkor, neo):
            store.ensure_schema()
            parts = iter_transactions(world_dir, batch_size=5000)
            # FalkorDB in time order, Neo4j grouped by account as bulk loads go: the order of
            # the batches must not change what either store holds
            store.ingest_many(
                (ing.from_arrow(rb) for rb in parts)
                if store is falkor
                else ing.by_account(parts, window=12_000, batch_size=5000)
            )
            for txn_id, value, at in zip(
                labels.column("txn_id").to_pylist(),
                labels.column("label").to_pylist(),
                labels.column("label_ts").to_pylist(),
                strict=True,
            ):
                label: LabelValue = "fraud" if value == 1 else "legitimate"
                store.label(kind="txn", id=txn_id, label=label, by="cb", at=at.timestamp())
        yield falkor, neo


def _same(a: Any, b: Any, where: str = "") -> bool:
    """Equal, floats to 1e-9 relative: FalkorDB replies with 15 significant digits, Neo4j with
    17, so a sum or mean read back differs in its last digits."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9), f"{where}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a.keys() ^ b.keys())[:5]}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
    return True


def _rings(store: CypherStore) -> dict[str, dict[str, Any]]:
    skip = {"created_at", "updated_at"}  # when each store's run happened
    return {r.id: r.model_dump(exclude=skip) for r in store.all_rings()}


def _export_rows(g: GraphExport) -> tuple[list[Any], np.ndarray, np.ndarray, list[Any], np.ndarray]:
    """Nodes and edges in id order: (keys, x, y, edge keys, edge_attr)."""
    order = sorted(range(g.num_nodes), key=lambda i: (int(g.kind[i]), g.ids[i]))
    keys = [(int(g.kind[i]), g.ids[i]) for i in order]
    pairs = [(g.ids[a], g.ids[b]) for a, b in g.edge_index.T.tolist()]
    eorder = sorted(range(len(pairs)), key=pairs.__getitem__)
    return keys, g.x[order], g.y[order], [pairs[i] for i in eorder], g.edge_attr[eorder]


def test_the_two_stores_find_the_same_rings_and_read_the_same_graph(
    both: tuple[CypherStore, CypherStore], world_dir: Path
) -> None:
    from world.io import read_world

    falkor, neo = both
    assert isinstance(neo, Neo4jStore)
    neo.use_gds = True
    full = [s.detect_rings() for s in (falkor, neo)]
    assert len(full[0].rings) > 10, "the world should hold rings"
    assert sorted(r.id for r in full[0].rings) == sorted(r.id for r in full[1].rings)
    assert _same(_rings(falkor), _rings(neo))
    # Neo4j took its components from GDS WCC in the database, FalkorDB from Python; and on
    # Neo4j itself the Python path finds the same rings again
    assert neo.in_db_components(), "the test server carries Graph Data Science"
    neo.use_gds = False
    in_python = neo.detect_rings()
    assert [r.members for r in in_python.rings] == [r.members for r in full[1].rings]
    assert not in_python.created and not in_python.removed

    txns = read_world(world_dir).transactions
    tail = txns.slice(txns.num_rows - 500)
    touched = set(tail.column("user_id").to_pylist())
    inc = [s.detect_rings(touched_users=touched) for s in (falkor, neo)]
    assert inc[0].examined_users == inc[1].examined_users
    assert _same(_rings(falkor), _rings(neo))

    fx, nx = falkor.export(chunk_size=3000), neo.export(chunk_size=3000)
    assert fx.num_nodes == nx.num_nodes and fx.edge_index.shape == nx.edge_index.shape
    (fk, fxx, fy, fe, fa), (nk, nxx, ny, ne, na) = _export_rows(fx), _export_rows(nx)
    assert fk == nk and fe == ne and (fy == ny).all()
    # FalkorDB's export sends numbers in thousandths (graph.falkor._columns)
    np.testing.assert_allclose(fxx, nxx, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(fa, na, rtol=1e-4, atol=2e-3)

    newest = falkor.newest_ts()
    assert newest is not None and _same(newest, neo.newest_ts())
    ledgers = [s.ledger_since(since=newest - 10 * 86_400).sort("txn_id") for s in (falkor, neo)]
    assert ledgers[0].height > 1000
    assert_frame_equal(ledgers[0], ledgers[1], rel_tol=1e-12, abs_tol=1e-5)

    ring = max(full[0].rings, key=lambda r: r.size)
    users = [*ring.members[:3], *tail.column("user_id").to_pylist()[:5]]
    for u in users:
        hoods = [s.neighbourhood("user", u, hops=2, max_nodes=10_000) for s in (falkor, neo)]
        assert {n.model_dump_json() for n in hoods[0].nodes} == {
            n.model_dump_json() for n in hoods[1].nodes
        }
        assert sorted(e.model_dump_json() for e in hoods[0].edges) == sorted(
            e.model_dump_json() for e in hoods[1].edges
        )
    a, b = EntityRef(kind="user", id=ring.members[0]), EntityRef(kind="user", id=ring.members[-1])
    assert falkor.path(src=a, dst=b).length == neo.path(src=a, dst=b).length > 0
