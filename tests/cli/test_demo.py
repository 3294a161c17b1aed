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
