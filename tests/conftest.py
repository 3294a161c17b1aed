"""Shared fixtures: real Redis (127.0.0.1:6379 when it answers, else embedded) and embedded FalkorDB.

Each test gets its own Redis key prefix and graph name and both are removed afterwards, so the
suite can share servers with a running deployment or a parallel run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import settings as hypothesis_settings

from fraudring.runtime import EmbeddedServer
from fraudring.settings import Settings, load_settings
from graph import neo4j_server
from graph.repository import CypherStore
from graph.service import open_store
from realtime import ops

LOCAL_REDIS = "redis://127.0.0.1:6379/0"

# `make test` and CI draw the same examples on every run, so a red CI run fails the same way
# locally; `pytest --hypothesis-profile=explore` searches further with fresh random examples.
hypothesis_settings.register_profile("repro", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", max_examples=1000, derandomize=False)
hypothesis_settings.load_profile("repro")


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One embedded redis-server + FalkorDB for the whole session."""
    server = EmbeddedServer(tmp_path_factory.mktemp("embedded")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    if _answers(LOCAL_REDIS):
        return LOCAL_REDIS
    server: EmbeddedServer = request.getfixturevalue("embedded")
    return server.url


@pytest.fixture(scope="session")
def falkor_url(embedded: EmbeddedServer) -> str:
    return embedded.graph_url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    ops.delete_prefix(client, prefix)
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def graph_name(falkor_url: str) -> Iterator[str]:
    import falkordb

    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    db = falkordb.FalkorDB.from_url(falkor_url.replace("falkordb://", "redis://"))
    if name in db.list_graphs():
        db.select_graph(name).delete()


@pytest.fixture
def make_settings(
    tmp_path: Path, redis_url: str, redis_prefix: str, falkor_url: str, graph_name: str
) -> Callable[..., Settings]:
    """Settings for a test: its own key prefix, graph name and data directory."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "redis_url": redis_url,
            "graph_url": falkor_url,
            "graph_name": graph_name,
            "redis_prefix": redis_prefix,
            "data_dir": tmp_path / "data",
            "api_keys": {},
        }
        values.update(overrides)
        return load_settings(**values)

    return make


def pytest_report_header() -> str:
    """Say at the top of every run whether the Neo4j half of the suite can run, and why not."""
    if os.environ.get("NEO4J_URI"):
        return f"neo4j: the server at NEO4J_URI={os.environ['NEO4J_URI']}"
    reason = neo4j_server.missing()
    if reason is None:
        return "neo4j: a local Neo4j server (tools/neo4j) starts for the tests that need it"
    return f"neo4j: Neo4j tests SKIP: {reason}"


@pytest.fixture(scope="session")
def neo4j_env() -> Iterator[dict[str, str]]:
    """NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD of a server: the one they name if set, else a
    local server (tools/neo4j) started once for the session. Without Java or Maven the Neo4j
    tests skip with that reason, except under CI, where every Neo4j test must run."""
    if os.environ.get("NEO4J_URI"):  # the one documented test switch, read here only
        yield {
            "NEO4J_URI": os.environ["NEO4J_URI"],
            "NEO4J_USER": os.environ.get("NEO4J_USER", "neo4j"),
            "NEO4J_PASSWORD": os.environ.get("NEO4J_PASSWORD", ""),
        }
        return
    reason = neo4j_server.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Neo4j tests: {reason}")
        pytest.skip(f"no Neo4j server: {reason}")
    with neo4j_server.running() as server:
        saved = {k: os.environ.get(k) for k in server.env}
        os.environ.update(server.env)  # child processes (workers) reach the same server
        try:
            yield server.env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def neo4j_settings(env: dict[str, str], **overrides: Any) -> Settings:
    """Settings pointing at the Neo4j server of `neo4j_env`."""
    values: dict[str, Any] = {
        "env": "test",
        "api_keys": {},
        "graph_url": env["NEO4J_URI"],
        "graph_user": env["NEO4J_USER"],
        "graph_password": env["NEO4J_PASSWORD"],
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def neo4j_clean(neo4j_env: dict[str, str]) -> dict[str, str]:
    """The Neo4j server, emptied (one database: a test has it to itself)."""
    with open_store(neo4j_env["NEO4J_URI"], settings=neo4j_settings(neo4j_env)) as s:
        assert isinstance(s, CypherStore)
        s._write("MATCH (n) DETACH DELETE n")
    return neo4j_env


@pytest.fixture(params=["falkordb", "neo4j"])
def store(request: pytest.FixtureRequest) -> Iterator[CypherStore]:
    """The graph store on both backends (Neo4j emptied first)."""
    if request.param == "falkordb":
        url = request.getfixturevalue("falkor_url")
        name = request.getfixturevalue("graph_name")
        settings = load_settings(env="test", api_keys={})
    else:
        env = request.getfixturevalue("neo4j_clean")
        url, name, settings = env["NEO4J_URI"], None, neo4j_settings(env)
    with open_store(url, settings=settings, graph_name=name) as s:
        assert isinstance(s, CypherStore)
        s.ensure_schema()
        s.ensure_schema()  # idempotent
        yield s
