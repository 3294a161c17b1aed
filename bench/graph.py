"""Graph store benchmark: ingest, 2-hop latency, ring detection, export, ring recall.

For each size (100k, then the requested size, 1M by default) it generates a world with
`world.simulate.generate` (hard difficulty, 30 days, seed `seed`), starts a fresh graph server
in a temporary directory (`--store falkordb`: an embedded FalkorDB; `--store neo4j`: the local
Neo4j Community server of tools/neo4j), and measures on graph `bench`:

- ingest_txn_per_s: transactions.parquet in `graph.ingest.BULK_BATCH` batches grouped by
  account (`graph.ingest.by_account`, as every bulk load) through `ingest_many`;
- ingest_txn_per_server_cpu_s: the same per second of the server's CPU time (the figure that
  does not depend on what else runs on the machine);
- two_hop_p99_ms: `neighbourhood("user", u, hops=2, max_nodes=200)` for 1,000 random users,
  after 1,000 untimed ones for other users (a served graph is warm);
- ring_detection_s: a full `detect_rings()` after the labels known at the world's end
  (label_ts <= last transaction) were applied, as a deployment would have them;
- ring_incremental_s: `detect_rings(touched_users=...)` for the users of the last 1,000
  transactions (a worker's batch);
- export_s: `export()` of the whole graph;
- ledger_read_s: `ledger_since` over the statistics window (the label delay, 7 days, plus 60:
  the whole 30-day world), what every statistics refresh reads;
- stats_compute_s: that read and `gnn.entitystats.current_stats` on it, what one refresh of
  the workers computes (its Redis writes left out);
- ring_recall: share of planted rings (truth.parquet, members per the world contract) of size
  >= 3 matched by a found ring with member Jaccard >= 0.5; found rings = suspicious rings of
  size >= 3;
- ring_false_share: share of found rings with no planted ring member;
- snapshot_fork_ms (FalkorDB only): the fork of the snapshot after the load.

The figures of the requested size are reported under the plain names; those of 100k under
`*_100k`, and `*_growth` is the ratio (requested / 100k).
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from rich.console import Console

from fraudring.errors import InvalidInput

console = Console(stderr=True)
TOUCHED = 1_000  # transactions of the incremental ring update (a worker's batch)
WARMUP = 1_000  # untimed 2-hop queries before the timed ones
SMALL = 100_000
#: The local Neo4j server's JVM heap and page cache: the whole 1M graph fits in the page cache.
NEO4J_HEAP = "3g"
NEO4J_PAGECACHE_MB = 3072
KEYS = (
    "ingest_txn_per_s",
    "ingest_txn_per_server_cpu_s",
    "two_hop_p99_ms",
    "ring_detection_s",
    "ring_incremental_s",
    "export_s",
    "ring_recall",
    "ring_false_share",
    "snapshot_fork_ms",
    "ledger_read_s",
    "stats_compute_s",
)


def _recall(planted: dict[str, set[str]], found: list[set[str]]) -> tuple[float, float]:
    from world.io import match_rings

    hit, targets, false = match_rings(planted, found)
    return hit / max(1, targets), false / max(1, len(found))


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _snapshot(url: str) -> float:
    """Run a BGSAVE to its end; the fork's duration in ms (NaN if not measurable)."""
    import redis

    client = redis.Redis.from_url(url.replace("falkordb://", "redis://", 1))
    while client.info("persistence").get("rdb_bgsave_in_progress"):
        time.sleep(0.1)
    client.bgsave()
    time.sleep(0.1)
    while client.info("persistence").get("rdb_bgsave_in_progress"):
        time.sleep(0.1)
    return float(client.info("stats").get("latest_fork_usec", float("nan"))) / 1000


def _measure(
    url: str,
    work: Path,
    *,
    transactions: int,
    seed: int,
    server_pid: int | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from tqdm import tqdm

    from fraudring.settings import load_settings
    from graph import ingest as ing
    from graph.falkor import FalkorStore
    from graph.repository import CypherStore
    from graph.service import open_store
    from world.io import iter_transactions, read_world, ring_members
    from world.simulate import generate

    world_dir = work / f"world-{transactions}"
    console.print(f"[bold]world[/bold] {transactions:,} transactions (seed {seed})")
    generate(out=world_dir, transactions=transactions, seed=seed, progress=True)
    world = read_world(world_dir)
    name = f"bench_{transactions}"
    config = load_settings(graph_name=name, **(settings or {}))
    out: dict[str, Any] = {"transactions": transactions}
    with open_store(url, settings=config, graph_name=name) as store:
        out["store"] = store.backend
        assert isinstance(store, CypherStore)
        store.ensure_schema()
        bar = tqdm(total=transactions, unit="txn", unit_scale=True, desc="ingest")
        batches = ing.by_account(iter_transactions(world_dir, batch_size=ing.BULK_BATCH))
        t0, cpu0 = time.perf_counter(), _cpu_seconds(server_pid)
        res = store.ingest_many(batches, on_batch=lambda r: bar.update(r.received))
        out["ingest_txn_per_s"] = res.ingested / (time.perf_counter() - t0)
        # the server's own CPU time: what ingest costs without the other load on the machine
        out["ingest_txn_per_server_cpu_s"] = res.ingested / (_cpu_seconds(server_pid) - cpu0)
        bar.close()

        end = pc.max(world.transactions.column("ts"))
        labels = world.labels.filter(pc.less_equal(world.labels.column("label_ts"), end))
        console.print(f"labels known at the end: {labels.num_rows:,}")
        for txn_id, value, at in zip(
            labels.column("txn_id").to_pylist(),
            labels.column("label").to_pylist(),
            labels.column("label_ts").to_pylist(),
            strict=True,
        ):
            store.label(
                kind="txn",
                id=txn_id,
                label="fraud" if value == 1 else "legitimate",
                by="chargeback",
                at=at.timestamp(),
            )

        # The load is followed by a snapshot, as a deployment checkpoints after a bulk load;
        # its fork pauses the server (reported as snapshot_fork_ms), so wait for it to end
        # rather than time it as a neighbourhood query.
        # (Neo4j has no fork: its checkpoints run beside the queries, so there is nothing to wait
        # for and no figure.)
        out["snapshot_fork_ms"] = _snapshot(url) if store.backend == "falkordb" else float("nan")

        users = world.transactions.column("user_id").unique().to_pylist()
        rng = np.random.default_rng(seed)
        sample = [users[i] for i in rng.choice(len(users), size=min(1000, len(users)))]
        # a served graph is warm: the first queries after a bulk load also pay the plan cache
        # and, on Neo4j, the JVM's compilation of the query paths, so other users go first
        for u in [users[i] for i in rng.choice(len(users), size=min(WARMUP, len(users)))]:
            store.neighbourhood("user", u, hops=2, max_nodes=200)
        # The benchmark holds the whole world as Python objects, which a service does not:
        # keep them out of the collector's full passes, or those pauses are what gets timed.
        gc.collect()
        gc.freeze()
        lat = []
        cpu0 = _cpu_seconds(server_pid)
        for u in sample:
            t0 = time.perf_counter()
            store.neighbourhood("user", u, hops=2, max_nodes=200)
            lat.append((time.perf_counter() - t0) * 1000)
        out["two_hop_p99_ms"] = float(np.percentile(lat, 99))
        out["two_hop_p50_ms"] = float(np.percentile(lat, 50))
        # server CPU per phase: what a phase costs whatever else shares the machine
        out["two_hop_server_cpu_ms"] = (_cpu_seconds(server_pid) - cpu0) / len(sample) * 1000
        gc.unfreeze()

        t0, cpu0, own0 = time.perf_counter(), _cpu_seconds(server_pid), time.process_time()
        update = store.detect_rings()
        out["ring_detection_s"] = time.perf_counter() - t0
        out["ring_detection_server_cpu_s"] = _cpu_seconds(server_pid) - cpu0
        out["ring_detection_client_cpu_s"] = time.process_time() - own0
        t0 = time.perf_counter()
        tail = world.transactions.slice(world.transactions.num_rows - TOUCHED)
        store.detect_rings(touched_users=set(tail.column("user_id").to_pylist()))
        out["ring_incremental_s"] = time.perf_counter() - t0

        t0, cpu0, own0 = time.perf_counter(), _cpu_seconds(server_pid), time.process_time()
        exported = store.export()
        out["export_s"] = time.perf_counter() - t0
        out["export_server_cpu_s"] = _cpu_seconds(server_pid) - cpu0
        out["export_client_cpu_s"] = time.process_time() - own0

        cpu0, own0 = _cpu_seconds(server_pid), time.process_time()
        out.update(_stats_refresh(store))
        out["stats_server_cpu_s"] = _cpu_seconds(server_pid) - cpu0
        out["stats_client_cpu_s"] = time.process_time() - own0

        found = [set(r.members) for r in update.rings if r.size >= 3 and r.suspicious]
        planted = ring_members(world.truth, world.transactions)
        out["ring_recall"], out["ring_false_share"] = _recall(planted, found)
        out["rings_found"] = len(found)
        out["rings_planted"] = sum(1 for m in planted.values() if len(m) >= 3)
        out["graph_nodes"] = exported.num_nodes
        out["graph_edges"] = int(exported.edge_index.shape[1] // 2)
        if isinstance(store, FalkorStore):
            store.graph.delete()  # free the server's memory before the next size
    console.print({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()})
    return out


def _stats_refresh(store: Any) -> dict[str, float]:
    """What the workers' statistics refresh computes every few minutes, against this graph:
    the ledger read, then `current_stats` (its Redis writes, a pipeline of one SET per entity,
    are left out: the benchmarks do not import `workers`)."""
    from gnn.entitystats import CPP_LOOKBACK_DAYS, current_stats

    delay = 7.0
    newest = store.newest_ts()
    t0 = time.perf_counter()
    ledger = store.ledger_since(since=newest - (delay + CPP_LOOKBACK_DAYS) * 86_400.0)
    read_s = time.perf_counter() - t0
    stats = current_stats(ledger.to_pandas(), at=newest + 1e-6, label_delay_days=delay)
    compute_s = time.perf_counter() - t0
    console.print(
        f"statistics: {ledger.height:,} ledger rows, {len(stats.merchants):,} merchants and "
        f"{len(stats.users):,} users"
    )
    return {"ledger_read_s": read_s, "stats_compute_s": compute_s}


def run(
    *, transactions: int | None = None, seed: int = 7, store: str = "falkordb"
) -> dict[str, float | int | str]:
    """`store`: "falkordb" (an embedded server) or "neo4j" (the local Neo4j Community server of
    tools/neo4j, see graph.neo4j_server); each size gets a fresh server."""
    size = transactions or 1_000_000
    sizes = [SMALL, size] if size > SMALL else [size]
    measured: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-graph-") as tmp:
        for n in sizes:
            with _server(store, Path(tmp) / f"server-{n}") as (url, pid, extra):
                measured[n] = _measure(
                    url, Path(tmp), transactions=n, seed=seed, server_pid=pid, **extra
                )
    main = measured[size]
    figures: dict[str, float | int | str] = {
        "data": f"world.simulate hard, seed {seed}, {size:,} transactions (30 days)",
        "store": main["store"],
        **{
            k: main[k]
            for k in (*KEYS, "rings_found", "rings_planted", "graph_nodes", "graph_edges")
        },
    }
    if SMALL in measured and size != SMALL:
        small = measured[SMALL]
        for k in KEYS:
            figures[f"{k}_100k"] = small[k]
            if small[k]:
                figures[f"{k}_growth"] = main[k] / small[k]
    return figures


@contextlib.contextmanager
def _server(store: str, directory: Path) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """(graph URL, server pid, settings overrides) of a fresh server of the given kind."""
    if store == "falkordb":
        from fraudring.runtime import EmbeddedServer

        server = EmbeddedServer(directory).start()
        try:
            pid = server._proc.pid if server._proc is not None else None
            yield server.graph_url, pid, {}
        finally:
            server.stop()
    elif store == "neo4j":
        from graph.neo4j_server import Neo4jServer

        neo = Neo4jServer(directory, heap=NEO4J_HEAP, pagecache_mb=NEO4J_PAGECACHE_MB).start()
        console.print(f"neo4j {neo.url} started in {neo.started_s:.1f} s")
        try:
            pid = neo._proc.pid if neo._proc is not None else None
            creds = {"graph_user": neo.user, "graph_password": neo.password}
            yield neo.url, pid, {"settings": creds}
        finally:
            neo.stop()
    else:
        raise InvalidInput(f"--store: one of falkordb, neo4j; got {store!r}")
