"""Two demos in one --out: the second is refused with the first one's pid, not run over it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fraudring.cli.demo.replay import DemoError
from fraudring.cli.demo.run import only_demo_in


def test_a_second_demo_in_the_same_out_is_refused(tmp_path: Path) -> None:
    with only_demo_in(tmp_path):
        with pytest.raises(DemoError, match=f"pid {os.getpid()}"), only_demo_in(tmp_path):
            pass  # pragma: no cover - the lock is held
        with only_demo_in(tmp_path / "other"):  # another --out is fine
            pass
    with only_demo_in(tmp_path):  # released when the first run ends
        pass


def test_the_demo_ends_by_saying_how_to_reach_its_data(capsys: pytest.CaptureFixture[str]) -> None:
    from fraudring.cli.demo.run import reach_the_data

    reach_the_data(Path("var/demo"))
    out = capsys.readouterr().out
    assert "fraudring --demo rings" in out
    assert (
        "FRAUDRING_GRAPH_NAME=fraudring_demo" in out and "FRAUDRING_DATA_DIR=var/demo/data" in out
    )
    reach_the_data(Path("elsewhere"))
    out = capsys.readouterr().out
    assert "--demo" not in out and "FRAUDRING_DATA_DIR=elsewhere/data" in out
