"""The graph's replay point, replay after a graph server lost writes, gaps, and the bounded stream
(real Redis and FalkorDB; a private embedded server where one is killed)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from fraudring.runtime import EmbeddedServer
from fraudring.settings import Settings
from graph.falkor import FalkorStore
from graph.service import open_store
from realtime import ops
from realtime.keys import DECISION_GROUP, Keys
from tests.support.workers import small_world, xadd_all
from workers import replay
from workers.scoring import heuristic_scorer
from workers.service import Pipeline, drain_decisions


def _txn_count(store: FalkorStore) -> int:
    rows = store._read("MATCH (t:Txn) RETURN count(t), count(DISTINCT t.id)")
    assert rows[0][0] == rows[0][1], "a transaction is in the graph twice"
    return int(rows[0][0])


@pytest.fixture
def pipe(make_settings: Callable[..., Settings], redis_client: redis.Redis) -> Iterator[Pipeline]:
    # no retention floor and no pause between trims: the stream shrinks after every batch
    s = make_settings(ingest_batch=100, stream_retention_s=0, stream_trim_every_s=0.001)
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        store.ensure_schema()
        yield Pipeline(client=redis_client, store=store, settings=s, scorer=heuristic_scorer)


def test_store_replay_point_round_trips_and_never_moves_back(pipe: Pipeline) -> None:
    store = pipe.store
    assert store.replay_point("s") is None
    store.record_replay_point("s", "1700000000000-5")
    store.record_replay_point("s", "999-0")  # older: ignored
    assert store.replay_point("s") == "1700000000000-5"
    store.record_replay_point("s", "1700000000001-0")
    assert store.replay_point("s") == "1700000000001-0"
    assert store.replay_point("other") is None


def test_a_graph_that_lost_its_writes_is_replayed_from_its_point(pipe: Pipeline) -> None:
    """Before: acknowledged messages were never read again, so a graph server restarted from an
    old snapshot (or none) silently missed them, and its indexes were gone until a restart."""
    keys = pipe.keys
    pipe.settings.stream_retention_s = 3600  # the history a graph server's loss needs
    world = small_world(users=20, txns=300)
    xadd_all(pipe.client, keys.decisions_stream, world[:200])
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=50)
    store = pipe.store
    assert isinstance(store, FalkorStore)
    assert _txn_count(store) == 200
    assert store.replay_point(keys.decisions_stream) is not None
    store.drop()  # the server came back with nothing: data, indexes and replay point lost
    xadd_all(pipe.client, keys.decisions_stream, world[200:])
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=50)
    assert _txn_count(store) == 300
    indexed = store._read("CALL db.indexes() YIELD label RETURN collect(label)")[0][0]
    assert "Txn" in indexed and "User" in indexed
    assert pipe.client.get(keys.meta("replay_gap")) is None


def test_stream_stays_bounded_while_workers_keep_up(pipe: Pipeline) -> None:
    keys = pipe.keys
    world = small_world(users=30, txns=1000)
    lengths = []
    for i in range(0, 1000, 100):
        xadd_all(pipe.client, keys.decisions_stream, world[i : i + 100])
        drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
        lengths.append(pipe.client.xlen(keys.decisions_stream))
    assert max(lengths) <= 100, lengths  # never more than the batch not yet read
    assert _txn_count(pipe.store) == 1000  # type: ignore[arg-type]


def test_trim_keeps_what_a_group_or_the_graph_still_needs(pipe: Pipeline) -> None:
    keys = pipe.keys
    stream = keys.decisions_stream
    xadd_all(pipe.client, stream, small_world(users=10, txns=50))
    pipe.client.xgroup_create(stream, DECISION_GROUP, id="0")
    pipe.client.xgroup_create(stream, "audit", id="0")  # a second reader, further behind
    got: Any = pipe.client.xreadgroup("audit", "a1", {stream: ">"}, count=10)
    ids = [i for i, _ in got[0][1]]
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
    # the audit group holds 10 entries pending: nothing from its oldest pending on may go
    assert pipe.client.xlen(stream) == 50
    pipe.client.xack(stream, "audit", *ids)
    pipe.client.delete(keys.meta("stream_trimmed"))
    replay.trim(pipe, graph_point=pipe.store.replay_point(stream))
    assert pipe.client.xlen(stream) == 40  # delivered to audit and acknowledged: gone
    pipe.client.delete(keys.meta("stream_trimmed"))
    assert replay.trim(pipe, graph_point="0-1") == 0  # the graph's point holds the rest


def test_retention_floor_keeps_recent_history(pipe: Pipeline) -> None:
    keys = pipe.keys
    pipe.settings.stream_retention_s = 3600
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=10, txns=50))
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
    assert pipe.client.xlen(keys.decisions_stream) == 50


def test_a_gap_that_cannot_be_replayed_is_reported(pipe: Pipeline) -> None:
    keys = pipe.keys
    stream = keys.decisions_stream
    xadd_all(pipe.client, stream, small_world(users=10, txns=100))
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
    pipe.store.drop()  # type: ignore[attr-defined]
    xadd_all(pipe.client, stream, small_world(users=10, txns=20, seed=3))
    drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
    gap = ops.replay_gap(pipe.client, keys)
    assert gap is not None and gap["replay_point"] == "0-0"
    entries: Any = pipe.client.xrange(keys.alerts_stream)
    alerts = [orjson.loads(f[b"d"]) for _, f in entries]
    assert any(a["kind"] == "replay_gap" for a in alerts)


# -- the embedded servers' append-only files -----------------------------------------------------
def _kill9(server: EmbeddedServer) -> None:
    assert server._proc is not None
    os.kill(server._proc.pid, signal.SIGKILL)
    server._proc.wait(timeout=10)
    server.owned = False


def test_kill9_of_the_embedded_graph_server_loses_no_acknowledged_write(
    tmp_path: Path, make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    """Before: RDB snapshots every 300 s, so a kill -9 lost every write since the last one."""
    server = EmbeddedServer(tmp_path / "graph").start()
    s = make_settings(graph_url=server.graph_url, ingest_batch=100)
    world = small_world(users=20, txns=400)
    try:
        with open_store(server.graph_url, settings=s) as store:
            store.ensure_schema()
            pipe = Pipeline(client=redis_client, store=store, settings=s, scorer=heuristic_scorer)
            xadd_all(redis_client, Keys(s.redis_prefix).decisions_stream, world)
            drain_decisions(pipe, consumer="c1", max_seconds=60, block_ms=20)
            time.sleep(1.5)  # appendfsync everysec
        _kill9(server)
        server.start()
        with open_store(server.graph_url, settings=s) as store:
            assert isinstance(store, FalkorStore)
            assert _txn_count(store) == 400
            assert store.replay_point(Keys(s.redis_prefix).decisions_stream) is not None
    finally:
        server.owned = True
        server.stop()


def test_a_gap_shows_in_status_and_readyz_until_accepted(
    pipe: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    import re
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.support.workers import ROOT, worker_env

    gap = {"stream": "s", "replay_point": "5-0", "trimmed_to": "9-0", "first_available": None}
    pipe.client.set(pipe.keys.meta("replay_gap"), orjson.dumps(gap))
    with TestClient(create_app(pipe.settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["checks"]["replay"]["ok"]

        def status(*args: str) -> str:
            out = subprocess.run(
                [sys.executable, "-m", "fraudring.cli", "status", *args], cwd=ROOT,
                env={**worker_env(pipe.settings), "COLUMNS": "250"}, capture_output=True,
                text=True, timeout=60, check=False,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            return out.stdout

        assert re.search(r"graph replay gap\s+│\s+entries from 5-0 to 9-0", status())
        assert "accepted" in status("--accept-gap")
        assert re.search(r"graph replay gap\s+│\s+none", status())
        assert client.get("/readyz").json()["checks"]["replay"]["ok"]


def test_every_store_keeps_a_replay_point(store: Any) -> None:
    """On every backend (Neo4j when NEO4J_URI is set): absent, recorded, only forward."""
    stream = f"s-{time.time_ns()}"
    assert store.replay_point(stream) is None
    store.record_replay_point(stream, "1700000000000-7")
    store.record_replay_point(stream, "1699999999999-9")
    assert store.replay_point(stream) == "1700000000000-7"
    store.record_replay_point(stream, "1700000000000-8")
    assert store.replay_point(stream) == "1700000000000-8"
