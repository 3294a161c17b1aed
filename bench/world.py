"""Benchmark: how fast `world.simulate.generate` writes a world (transactions per second)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from world.simulate import generate


def run(*, transactions: int | None, seed: int) -> dict[str, float | int | str]:
    n = transactions or 1_000_000
    with tempfile.TemporaryDirectory(prefix="fraudring-bench-world-") as tmp:
        out = Path(tmp) / "world"
        t0 = time.perf_counter()
        summary = generate(out=out, transactions=n, seed=seed, progress=True)
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in out.iterdir())
    return {
        "data": f"synthetic world, seed {seed}, hard, 30 days",
        "transactions": summary.transactions,
        "fraud_transactions": summary.fraud_transactions,
        "rings": len(summary.rings),
        "seconds": round(seconds, 2),
        "txn_per_s": round(summary.transactions / seconds),
        "bytes_per_txn": round(size / summary.transactions, 1),
    }
