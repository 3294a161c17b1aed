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
from graph.repository import CypherStore
from graph.service import open_store
from realtime import ops

LOCAL_REDIS = "redis://127.0.0.1:6379/0"

# `make test` and CI draw the same examples on every run, so a red CI run fails the same way
# locally; `pytest --hypothesis-profile=explore` searches further with fresh random examples.
hypothesis_settings.register_profile("repro", derandomize=True, print_blob=True)
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


def neo4j_url() -> str | None:
    return os.environ.get("NEO4J_URI")  # the one documented test switch, read here only


def neo4j_auth() -> tuple[str, str]:
    """Credentials of the NEO4J_URI server (NEO4J_USER / NEO4J_PASSWORD)."""
    return os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")


@pytest.fixture(params=["falkordb", "neo4j"])
def store(request: pytest.FixtureRequest) -> Iterator[CypherStore]:
    """The graph store on every backend available (Neo4j only with NEO4J_URI, emptied first)."""
    if request.param == "falkordb":
        url = request.getfixturevalue("falkor_url")
        name = request.getfixturevalue("graph_name")
        settings = load_settings(env="test", api_keys={})
    else:
        url = neo4j_url()
        if url is None:
            pytest.skip("NEO4J_URI not set: no Neo4j server to test against")
        user, password = neo4j_auth()
        name = None
        settings = load_settings(env="dev", graph_user=user, graph_password=password)
    with open_store(url, settings=settings, graph_name=name) as s:
        assert isinstance(s, CypherStore)
        if s.backend == "neo4j":
            s._write("MATCH (n) DETACH DELETE n")
        s.ensure_schema()
        s.ensure_schema()  # idempotent
        yield s
