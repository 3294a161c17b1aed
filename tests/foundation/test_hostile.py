"""Settings and the CLI facing a hostile or unlucky operator: weak production passwords, a
data directory that cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraudring.settings import SettingsError, hash_api_key, load_settings


@pytest.mark.parametrize("password", ["neo4j", "", "password"])
def test_prod_refuses_a_weak_neo4j_password(password: str) -> None:
    keys = {hash_api_key("k"): "score"}
    with pytest.raises(SettingsError, match=r"FRAUDRING_GRAPH_PASSWORD|graph_password"):
        load_settings(
            env="prod", graph_url="bolt://db:7687", graph_password=password, api_keys=keys
        )
    ok = load_settings(
        env="prod", graph_url="bolt://db:7687", graph_password="s3cret-long", api_keys=keys
    )
    assert ok.graph_password.get_secret_value() == "s3cret-long"


def _status(data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDRING_")}
    env["FRAUDRING_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "fraudring.cli", "status"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    run = _status(tmp_path / "blocker" / "var", tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "cannot write" in run.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_data_dir_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        run = _status(ro / "var", tmp_path)
    finally:
        ro.chmod(0o700)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "cannot write" in run.stderr
