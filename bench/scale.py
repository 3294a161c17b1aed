"""How cost grows with volume: Redis bytes per decision and per entity, the graph at 1M-10M.

Two parts, printed together (``fraudring bench scale``):

- redis (`bench.scale_redis`): decisions through the engine (no HTTP) over a fixed set of users
  on an embedded Redis; bytes per key family after a warm-up and after as many decisions again,
  so the marginal bytes per decision at steady state and the bytes per active entity;
- graph: `bench.graph`'s measurements (ingest, 2-hop p99, full and incremental ring detection,
  export, statistics refresh) on the hard world at 1M, 5M and 10M transactions (the sizes up to
  ``--transactions``), in one embedded FalkorDB server, with the growth factor between
  consecutive sizes and the peak resident memory of the graph server and of this process, which
  plays the worker (ledger read, statistics, export; it also holds the world it loads).

The `*_server_cpu_*` / `*_client_cpu_*` figures are the CPU time of the graph server and of this
process (ring detection and statistics run in the client) in a phase, which do not depend on
what else shares the machine. The graph part of a 10M run takes over an hour on two cores:
it logs progress to stderr and each size's figures as one JSON line to
``FRAUDRING_BENCH_SCALE_LOG`` when set, so a background run can be followed and an interrupted
run keeps what it measured.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from fraudring.errors import InvalidInput

console = Console(stderr=True)
SIZES = (1_000_000, 5_000_000, 10_000_000)
GRAPH_KEYS = (
    "ingest_txn_per_s",
    "ingest_txn_per_server_cpu_s",
    "two_hop_p99_ms",
    "ring_detection_s",
    "ring_incremental_s",
    "export_s",
    "ledger_read_s",
    "stats_compute_s",
    "two_hop_server_cpu_ms",
    "ring_detection_server_cpu_s",
    "ring_detection_client_cpu_s",
    "export_server_cpu_s",
    "export_client_cpu_s",
    "stats_server_cpu_s",
    "stats_client_cpu_s",
    "server_rss_mb",
)


def _status_kb(pid: int | None, field: str) -> float:
    """A memory field (VmRSS, VmHWM) of a Linux process in kB; NaN elsewhere."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _log(entry: dict[str, Any]) -> None:
    path = os.environ.get("FRAUDRING_BENCH_SCALE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"at": time.time(), **entry}) + "\n")


def graph_sizes(transactions: int) -> list[int]:
    """The standard sizes up to `transactions`; ``FRAUDRING_BENCH_SCALE_SIZES`` (comma-separated
    counts) picks them instead, e.g. to run one large size alone after the others."""
    chosen = os.environ.get("FRAUDRING_BENCH_SCALE_SIZES")
    if chosen:
        try:
            picked = sorted({int(n) for n in chosen.split(",") if n.strip()})
        except ValueError:
            picked = []
        if not picked or picked[0] < 1:
            raise InvalidInput(
                f"FRAUDRING_BENCH_SCALE_SIZES: positive counts separated by commas; got {chosen!r}"
            )
        return picked
    sizes = [n for n in SIZES if n < transactions]
    return [*sizes, transactions]


def run_graph(*, transactions: int, seed: int) -> dict[str, float | int | str]:
    from bench.graph import _measure
    from fraudring.runtime import EmbeddedServer

    sizes = graph_sizes(transactions)
    measured: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-scale-") as tmp:
        server = EmbeddedServer(Path(tmp) / "server").start()
        pid = server._proc.pid if server._proc is not None else None
        try:
            for n in sizes:
                t0 = time.perf_counter()
                out = _measure(
                    server.graph_url, Path(tmp), transactions=n, seed=seed, server_pid=pid
                )
                # the graph is deleted at the end of _measure: its peak is the high-water mark
                out["server_rss_mb"] = _status_kb(pid, "VmHWM") / 1024
                out["wall_s"] = time.perf_counter() - t0
                measured[n] = out
                _log({"size": n, **out})
                for f in Path(tmp).glob(f"world-{n}"):
                    _rmtree(f)
        finally:
            server.stop()
    figures: dict[str, float | int | str] = {
        "graph_data": f"world.simulate hard, seed {seed}, 30 days, sizes {sizes}",
        "worker_peak_rss_mb": _status_kb(None, "VmHWM") / 1024,
    }
    prev: int | None = None
    for n in sizes:
        tag = f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"
        for k in GRAPH_KEYS:
            figures[f"{k}@{tag}"] = measured[n][k]
            if prev is not None and measured[prev][k]:
                figures[f"{k}@{tag}_growth"] = measured[n][k] / measured[prev][k]
        prev = n
    return figures


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def run(*, transactions: int | None = None, seed: int = 7) -> dict[str, float | int | str]:
    from bench.scale_redis import run_redis

    parts = os.environ.get("FRAUDRING_BENCH_SCALE_PARTS", "redis,graph").split(",")
    figures: dict[str, float | int | str] = dict(run_redis(seed=seed)) if "redis" in parts else {}
    if "graph" in parts:
        figures.update(run_graph(transactions=transactions or SIZES[-1], seed=seed))
    return figures
