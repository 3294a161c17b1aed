"""`fraudring lists ...` and `fraudring rings export` against real Redis and embedded FalkorDB."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from fraudring.cli import app
from fraudring.cli.workbench import parse_ttl
from fraudring.errors import InvalidInput
from fraudring.settings import get_settings, load_settings
from graph.schemas import TxnRecord
from graph.service import open_store
from realtime.keys import Keys, ListEntry


@pytest.fixture
def configured(
    falkor_url: str,
    redis_url: str,
    graph_name: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    monkeypatch.setenv("FRAUDRING_GRAPH_URL", falkor_url)
    monkeypatch.setenv("FRAUDRING_REDIS_URL", redis_url)
    monkeypatch.setenv("FRAUDRING_GRAPH_NAME", graph_name)
    monkeypatch.setenv("FRAUDRING_REDIS_PREFIX", redis_prefix)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    with open_store(falkor_url, settings=load_settings(), graph_name=graph_name) as store:
        store.ensure_schema()
        store.ingest(
            [
                TxnRecord(f"t{k}", 1.75e9 + k, f"user{k}", None, "shared-dev", None, None, 9.0)
                for k in range(5)
            ]
        )
        (ring,) = store.detect_rings().rings
    yield ring.id
    get_settings.cache_clear()


def test_lists_add_show_remove(configured: str, redis_url: str, redis_prefix: str) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "lists",
            "add",
            "block",
            "device",
            "shared-dev",
            "d2",
            "--reason",
            "ring",
            "--ttl",
            "2h",
            "--by",
            "ops",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "block_list device:shared-dev until" in res.output
    raw = redis.Redis.from_url(redis_url).get(Keys(redis_prefix).list_entry("device", "shared-dev"))
    entry = ListEntry.loads(raw or b"")
    assert entry is not None and entry.by == "ops" and entry.action == "block"
    assert 7190 < entry.expires_at - entry.at <= 7200
    shown = runner.invoke(app, ["lists", "show", "--action", "block"])
    assert shown.exit_code == 0 and "2 list entries" in shown.output and "d2" in shown.output
    gone = runner.invoke(app, ["lists", "remove", "device", "d2", "--reason", "wrong one"])
    assert gone.exit_code == 0 and "removed device:d2" in gone.output
    assert "1 list entries" in runner.invoke(app, ["lists", "show"]).output
    bad = runner.invoke(app, ["lists", "add", "ban", "device", "x", "--reason", "r"])
    assert bad.exit_code != 0


def test_rings_export_ring_and_neighbourhood(configured: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ring.graphml"
    res = runner.invoke(
        app, ["rings", "export", configured, "--format", "graphml", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert len(ET.parse(out).getroot().findall(".//{*}node")) == 6
    png = tmp_path / "hood.png"
    res = runner.invoke(
        app,
        [
            "rings",
            "export",
            "--around",
            "device:shared-dev",
            "--hops",
            "1",
            "--format",
            "png",
            "--out",
            str(png),
        ],
    )
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    # `rings` alone is still the table
    assert configured in runner.invoke(app, ["rings", "--top", "3"]).output


def test_ttl_parsing() -> None:
    assert [parse_ttl(t) for t in ("90s", "30m", "12h", "7d", "600")] == [
        90,
        1800,
        43200,
        604800,
        600,
    ]
    with pytest.raises(InvalidInput, match="--ttl"):
        parse_ttl("soon")
