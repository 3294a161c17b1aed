"""Settings, embedded runtime, CLI and deployment files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fraudring.registry import ModelRegistry
from fraudring.runtime import EmbeddedServer, free_port, services
from fraudring.settings import DEV_API_KEY, SettingsError, hash_api_key, load_settings
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_settings_defaults_dev_key_works() -> None:
    s = load_settings(env="dev")
    assert s.scopes_for(DEV_API_KEY) == frozenset({"score", "investigate", "admin"})
    assert s.scopes_for("wrong") is None
    assert s.models_path == s.data_dir / "models"


def test_dev_key_refused_outside_dev() -> None:
    with pytest.raises(SettingsError, match="FRAUDRING_API_KEYS: the dev key is refused"):
        load_settings(env="prod")
    s = load_settings(env="prod", api_keys={hash_api_key("k1"): "score"})
    assert s.scopes_for("k1") == frozenset({"score"})


def test_default_neo4j_password_refused_in_prod() -> None:
    with pytest.raises(SettingsError, match="FRAUDRING_GRAPH_PASSWORD: the default password"):
        load_settings(env="prod", api_keys={}, graph_url="bolt://db:7687")


def test_invalid_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDRING_COST_FP", "-3")
    with pytest.raises(SettingsError, match="FRAUDRING_COST_FP"):
        load_settings()


def test_plain_redis_url_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/1")
    assert load_settings().redis_url == "redis://example:6380/1"


@given(st.text(min_size=1, max_size=12).filter(lambda s: ":" not in s))
def test_graph_url_scheme_validated(scheme: str) -> None:
    url = f"{scheme}://host:1"
    ok = scheme in {"falkordb", "falkordbs", "redis", "bolt", "bolt+s", "neo4j", "neo4j+s"}
    if ok:
        assert load_settings(graph_url=url).graph_url == url
    else:
        with pytest.raises(SettingsError):
            load_settings(graph_url=url)


def test_thresholds_ordered() -> None:
    with pytest.raises(SettingsError, match="review_threshold"):
        load_settings(review_threshold=0.9, decline_threshold=0.5)


def test_embedded_start_twice_attaches_and_persists(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path).start()
    try:
        second = EmbeddedServer(tmp_path).start()
        assert second.port == first.port and not second.owned
        client = redis.Redis.from_url(first.url)
        client.set("k", "v")
        client.execute_command("GRAPH.QUERY", "g", "CREATE (:User {id: 'u1'})")
        second.stop()  # not the owner: must leave the server running
        assert client.ping()
    finally:
        first.stop()
    # A restart in the same directory keeps the data (persistence on).
    again = EmbeddedServer(tmp_path).start()
    try:
        client = redis.Redis.from_url(again.url)
        assert client.get("k") == b"v"
        res = client.execute_command("GRAPH.RO_QUERY", "g", "MATCH (u:User) RETURN u.id")
        assert res[1] == [[b"u1"]]
    finally:
        again.stop()


def test_embedded_restart_keeps_an_indexed_graph(tmp_path: Path) -> None:
    """An append-only file, compacted at a clean stop: the log of graph writes (the schema's
    constraint commands included) replays after a kill, and a clean restart loads a snapshot."""
    from graph.ingest import from_records
    from graph.schemas import TxnRecord
    from graph.service import open_store

    records = [
        TxnRecord(f"t{i}", 1.75e9 + i, f"u{i % 30}", f"c{i % 40}", f"d{i % 7}", None, "m1", 5.0)
        for i in range(400)
    ]
    settings = load_settings()
    server = EmbeddedServer(tmp_path).start()
    try:
        assert redis.Redis.from_url(server.url).config_get("appendonly") == {"appendonly": "yes"}
        with open_store(server.graph_url, settings=settings, graph_name="g") as store:
            store.ensure_schema()
            assert store.ingest(from_records(records)).ingested == 400
    finally:
        server.stop()
    again = EmbeddedServer(tmp_path).start()
    try:
        with open_store(again.graph_url, settings=settings, graph_name="g") as store:
            store.ensure_schema()  # idempotent on the restored schema
            assert store.ingest(from_records(records)).ingested == 0  # the ledger came back
            assert store.neighbourhood("user", records[0].user_id, hops=1).nodes
    finally:
        again.stop()


def test_embedded_stale_pid_file_and_taken_port(tmp_path: Path) -> None:
    (tmp_path / "redis.pid").write_text("999999\n")
    (tmp_path / "redis.port").write_text(str(free_port()))
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = EmbeddedServer(tmp_path).start()
        try:
            assert server.owned and server.port != busy.getsockname()[1]
            assert redis.Redis.from_url(server.url).ping()
        finally:
            server.stop()
    assert not (tmp_path / "redis.port").exists()


def test_services_uses_configured_urls_without_starting(tmp_path: Path) -> None:
    s = load_settings(
        redis_url="redis://127.0.0.1:1/0", graph_url="bolt://h:7687", data_dir=tmp_path
    )
    with services(s) as ep:
        assert not ep.embedded and ep.redis_url == "redis://127.0.0.1:1/0"
    assert not (tmp_path / "embedded").exists()


def test_cli_version_and_help() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("fraudring ")
    assert run_cli("doctor", "--help").returncode == 0


def test_doctor_starts_embedded_and_leaves_nothing(tmp_path: Path) -> None:
    out = run_cli("doctor", env={"FRAUDRING_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded" in out.stdout and "falkordb" in out.stdout
    for sub in ("embedded", "embedded-redis"):  # the graph server and the plain Redis
        assert (tmp_path / sub / "redis.log").exists()  # it did start
        pid_file = tmp_path / sub / "redis.pid"
        if pid_file.exists():  # redis removes it on shutdown; if left, the process is gone
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid_file.read_text()), 0)
        assert not (tmp_path / sub / "redis.port").exists()


def test_embedded_redis_and_graph_are_separate_processes(tmp_path: Path) -> None:
    """A FalkorDB write holds its server; the decision path's Redis must not wait for it."""
    with services(load_settings(data_dir=tmp_path)) as ep:
        assert ep.embedded and ep.redis_url.split(":")[2] != ep.graph_url.split(":")[2]
        plain, graph = (
            redis.Redis.from_url(ep.redis_url),
            redis.Redis.from_url(ep.graph_url.replace("falkordb://", "redis://")),
        )
        modules = {m[b"name"] for m in plain.execute_command("MODULE", "LIST")}
        assert b"graph" not in modules
        assert graph.execute_command("GRAPH.QUERY", "g", "RETURN 1")
        plain.set("k", "v")
        assert graph.get("k") is None
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_doctor_reports_unreachable_redis(tmp_path: Path) -> None:
    out = run_cli(
        "doctor",
        env={
            "FRAUDRING_DATA_DIR": str(tmp_path),
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "GRAPH_URL": f"falkordb://127.0.0.1:{free_port()}",
        },
    )
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "Traceback" not in out.stderr


def test_cli_bad_setting_is_one_line_not_traceback(tmp_path: Path) -> None:
    out = run_cli("doctor", env={"FRAUDRING_AMOUNT_CAP": "zero"})
    assert out.returncode == 2
    assert "FRAUDRING_AMOUNT_CAP" in out.stderr and "Traceback" not in out.stderr


SIGTERM_AFTER_MAIN = """
import os, signal, sys, time
from fraudring import cli
sys.argv = ["fraudring", "--version"]
try:
    cli.main()
except SystemExit:
    pass
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
finally:
    print("unwound", flush=True)
"""


def test_sigterm_unwinds_like_ctrl_c() -> None:
    """A command stopped by SIGTERM runs its cleanup (the embedded servers, worker and API it
    started would otherwise outlive it)."""
    out = subprocess.run(
        [sys.executable, "-c", SIGTERM_AFTER_MAIN], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 143 and "unwound" in out.stdout, out.stderr


def test_demo_refuses_bad_options_before_starting_anything(tmp_path: Path) -> None:
    out = run_cli("demo", "--fraud-rate", "0.5", "--out", str(tmp_path / "demo"))
    assert out.returncode == 2 and "--fraud-rate" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "demo").exists()


def test_registry_promote_only_when_better_and_rollback(tmp_path: Path) -> None:
    art = tmp_path / "a.bin"
    art.write_text("x")
    reg = ModelRegistry(tmp_path / "models")
    v1 = reg.register(
        artifacts={"a.bin": art},
        manifest={"metrics": {"pr_auc": 0.5}},
        version="20260101T000000000000Z",
    )
    assert reg.promote(v1, metric="pr_auc")
    v2 = reg.register(
        artifacts={"a.bin": art},
        manifest={"metrics": {"pr_auc": 0.4}},
        version="20260102T000000000000Z",
    )
    assert not reg.promote(v2, metric="pr_auc") and reg.live_version() == v1
    v3 = reg.register(
        artifacts={"a.bin": art},
        manifest={"metrics": {"pr_auc": 0.7}},
        version="20260103T000000000000Z",
    )
    assert reg.promote(v3, metric="pr_auc", margin=0.1) and reg.live_version() == v3
    assert reg.rollback() == v1 and reg.live_version() == v1
    assert reg.manifest(v1)["live"] is True
    # `models list` in an 80-column terminal: whole versions, what promote and rollback take
    v4 = reg.register(
        artifacts={"a.bin": art},
        manifest={
            "metrics": {"val_pr_auc": 0.2951},
            "thresholds": {"review": 0.1172, "decline": 0.3446},
            "data_window": {"name": "world", "start": "2026-01-05", "end": "2026-01-30"},
        },
        version="20260104T094147820866Z",
    )
    out = run_cli("models", "list", env={"FRAUDRING_DATA_DIR": str(tmp_path), "COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert all(v in out.stdout for v in (v1, v2, v3, v4)), out.stdout


def test_docker_compose_services() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services_ = spec["services"]
    assert services_["neo4j"]["image"].startswith("neo4j:")
    assert "NEO4J_PASSWORD" in services_["neo4j"]["environment"]["NEO4J_AUTH"]
    assert services_["redis"]["image"].startswith("redis:")
    assert "--appendonly" in services_["redis"]["command"]
    for name in ("neo4j", "redis"):
        hc = services_[name]["healthcheck"]
        assert hc["test"] and hc["interval"] and hc["retries"] > 0
        assert any(v.endswith(":/data") for v in services_[name]["volumes"])


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_a_crashed_child_is_restarted_and_a_broken_one_given_up(tmp_path: Path) -> None:
    import sys

    from fraudring.children import MAX_EARLY_CRASHES, run_child

    marker = tmp_path / "ran"
    once = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "sys.exit(0) if p.exists() else (p.write_text('x'), sys.exit(3))"
    )
    assert run_child([sys.executable, "-c", once, str(marker)], restart=True, backoff_s=0) == 0
    assert marker.exists()
    count = tmp_path / "count"
    always = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); sys.exit(3)"
    )
    assert run_child([sys.executable, "-c", always, str(count)], restart=True, backoff_s=0) == 3
    assert count.read_text() == "x" * MAX_EARLY_CRASHES
    assert run_child([sys.executable, "-c", "raise SystemExit(4)"]) == 4  # no restart asked
