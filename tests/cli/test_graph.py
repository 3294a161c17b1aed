"""`fraudring rings` and `fraudring neighbourhood` against embedded FalkorDB."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from fraudring.cli import app
from fraudring.settings import get_settings, load_settings
from graph.schemas import TxnRecord
from graph.service import open_store


@pytest.fixture
def configured(
    falkor_url: str, redis_url: str, graph_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("FRAUDRING_GRAPH_URL", falkor_url)
    monkeypatch.setenv("FRAUDRING_REDIS_URL", redis_url)
    monkeypatch.setenv("FRAUDRING_GRAPH_NAME", graph_name)
    get_settings.cache_clear()
    with open_store(falkor_url, settings=load_settings(), graph_name=graph_name) as store:
        store.ensure_schema()
        store.ingest(
            [
                TxnRecord(f"t{k}", 1.75e9 + k, f"user{k}", None, "shared-dev", None, None, 9.0)
                for k in range(5)
            ]
        )
    yield graph_name
    get_settings.cache_clear()


def test_rings_and_neighbourhood_print_tables(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()
    empty = runner.invoke(app, ["rings"])
    assert empty.exit_code == 0, empty.output
    assert "no rings stored" in empty.output
    quiet = runner.invoke(app, ["rings", "--detect", "--top", "5"])
    assert quiet.exit_code == 0, quiet.output  # five accounts on one device: a household
    assert "detected 1 rings" in quiet.output and "none of the top 1 groups" in quiet.output
    found = runner.invoke(app, ["rings", "--all", "--top", "5"])
    assert found.exit_code == 0, found.output
    assert "top 1 rings by risk" in found.output
    # the whole ring id, what the next command takes, in an 80-column terminal
    assert re.search(r"\bring-[0-9a-f]{12}\b", found.output), found.output
    assert "1 device" in found.output and "0 of 5" in found.output
    nb = runner.invoke(app, ["neighbourhood", "device", "shared-dev", "--hops", "1"])
    assert nb.exit_code == 0, nb.output
    assert "6 nodes within 1 hops" in nb.output and "user4" in nb.output


def test_rings_call_payees_accounts_accounts(
    configured: str, falkor_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three accounts each paying the next: what ties them is the payees' accounts."""
    monkeypatch.setenv("COLUMNS", "80")
    cycle = [("L1", "L2"), ("L2", "L3"), ("L3", "L1")]
    with open_store(falkor_url, settings=load_settings(), graph_name=configured) as store:
        store.ingest(
            [
                TxnRecord(f"x{k}{i}", 1.75e9 + 600 * k + i, u, None, None, None, None, 50.0, v)
                for k in (0, 1)
                for i, (u, v) in enumerate(cycle)
            ]
        )
        store.label(kind="txn", id="x00", label="fraud", by="ana", at=1.75e9 + 900)
    out = CliRunner().invoke(app, ["rings", "--detect", "--all", "--top", "5"])
    assert out.exit_code == 0, out.output
    assert "3 account" in out.output and "merchant" not in out.output, out.output
    assert "1 device" in out.output  # the household's device is no account
    nb = CliRunner().invoke(app, ["neighbourhood", "user", "L1", "--hops", "1"])
    assert nb.exit_code == 0, nb.output
    assert "account of L1" in nb.output and "merchant" in nb.output  # L2's owner is not in view


def test_commands_have_help() -> None:
    runner = CliRunner()
    for cmd in ("rings", "neighbourhood"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output
