"""Where a drain's wall time went, from py-spy's raw stacks (bench.sampling.shares)."""

from __future__ import annotations

import math
from pathlib import Path

from bench.sampling import shares

MARKS = {"graph_write": ("CypherStore.ingest",), "ring_pass": ("detect_rings",)}


def _raw(tmp_path: Path, lines: list[str]) -> Path:
    f = tmp_path / "w-0.txt"
    f.write_text("\n".join(lines) + "\n")
    return f


def test_shares_split_the_drain_by_mark_and_by_waiting(tmp_path: Path) -> None:
    drain = "Thread.run (threading.py:971);process_decisions (workers/service.py:165)"
    f = _raw(
        tmp_path,
        [
            f"{drain};CypherStore.ingest (graph/repository.py:199);"
            "SocketBuffer._read_from_socket (redis/_parsers/socket.py:60) 30",
            f"{drain};CypherStore.ingest (graph/repository.py:199);plan (graph/x.py:1) 10",
            f"{drain};CypherStore.detect_rings (graph/repository.py:304) 20",
            f"{drain};Redis.execute_command (redis/client.py:1) 30",
            f"{drain};shared_pass (workers/ringpass.py:53);Lock.acquire (redis/lock.py:195) 10",
            "Thread.run (threading.py:971);Condition.wait (threading.py:320) 100",
            "not a stack line",
        ],
    )
    got = shares([f, tmp_path / "missing.txt"], MARKS, within="process_decisions")
    assert got["process_decisions_threads"] == 0.5
    assert got["graph_write"] == 0.4
    assert got["ring_pass"] == 0.2
    assert got["waiting_reply"] == 0.3
    assert got["waiting_lock"] == 0.1


def test_shares_without_samples_are_nan_not_zero(tmp_path: Path) -> None:
    got = shares([_raw(tmp_path, [])], MARKS, within="process_decisions")
    assert all(math.isnan(v) for v in got.values())
