"""The scale benchmarks' pure parts: which sizes run, and the worker profile read from logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.knee import profile
from bench.scale import graph_sizes
from fraudring.errors import InvalidInput


def test_graph_sizes_stop_at_the_requested_size() -> None:
    assert graph_sizes(10_000_000) == [1_000_000, 5_000_000, 10_000_000]
    assert graph_sizes(5_000_000) == [1_000_000, 5_000_000]
    assert graph_sizes(200_000) == [200_000]
    assert graph_sizes(2_000_000) == [1_000_000, 2_000_000]


def test_profile_splits_batch_time(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(
        "[x: WARNING] [debug] graph.ingested duplicates=0 edges_written=9 ingested=500 "
        "received=500 seconds=0.2\n"
        "[x: WARNING] [info] graph.rings_detected created=1 full=False rings=3 seconds=0.5\n"
        "[x: WARNING] [info] graph.ingested deadlettered=0 ingested=500 messages=500 rings=3 "
        "seconds=1.0\n"
        "[x: INFO] Task fraudring.ingest.drain succeeded in 10.4s: {'messages': 500}\n"
    )
    out = profile([log])
    assert out["batch_s_per_1k"] == pytest.approx(2.0)
    assert out["graph_write_s_per_1k"] == pytest.approx(0.4)
    assert out["ring_pass_s_per_1k"] == pytest.approx(1.0)
    assert out["other_s_per_1k"] == pytest.approx(0.6)


def test_graph_sizes_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDRING_BENCH_SCALE_SIZES", "10000000, 1000000")
    assert graph_sizes(5_000_000) == [1_000_000, 10_000_000]
    monkeypatch.setenv("FRAUDRING_BENCH_SCALE_SIZES", "ten")
    with pytest.raises(InvalidInput, match="FRAUDRING_BENCH_SCALE_SIZES"):
        graph_sizes(5_000_000)
