"""The worlds written apart load as a user's CSV would: every row kept, the same bytes for a
seed, and their rings in the truth."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from world.io import read_meta
from world.loaders import load_table, parse_columns


@pytest.mark.parametrize("name", ["farm", "p2p"])
def test_a_world_written_apart_loads_whole_and_repeats(name: str, tmp_path: Path) -> None:
    gen = importlib.import_module(f"bench.apart.{name}")
    first = gen.write(3, tmp_path / "a.csv")
    again = gen.write(3, tmp_path / "b.csv")
    assert first.read_bytes() == again.read_bytes()
    rows = len(first.read_text().splitlines()) - 1
    report = load_table(src=first, out=tmp_path / "w", columns=parse_columns(gen.COLUMNS))
    assert (report.loaded, report.rejected) == (rows, 0)
    assert read_meta(tmp_path / "w")["counts"]["rings"] == 24
