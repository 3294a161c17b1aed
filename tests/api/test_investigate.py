"""Investigator endpoints and page over a tiny hand-built graph in embedded FalkorDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from fraudring.runtime import free_port
from fraudring.settings import Settings, hash_api_key
from graph.schemas import TxnRecord
from graph.service import open_store

T0 = 1_750_000_000.0
INV = {"X-API-Key": "k-inv"}


def rec(i: int, user: str, *, device: str, ip: str | None = None) -> TxnRecord:
    return TxnRecord(f"t{i}", T0 + i, user, f"card-{user}", device, ip, f"m-{user}", 20.0)


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    keys = {hash_api_key("k-inv"): "investigate", hash_api_key("k-score"): "score"}
    settings = make_settings(api_keys=keys)
    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        store.ensure_schema()
        # Ring: a1..a3 share device dA (and a1/a2 an IP); b1 is alone.
        store.ingest(
            [rec(1, "a1", device="dA", ip="10.0.0.1"), rec(2, "a2", device="dA", ip="10.0.0.1")]
        )
        store.ingest([rec(3, "a3", device="dA"), rec(4, "b1", device="dB")])
        store.detect_rings()
    with TestClient(create_app(settings)) as c:
        yield c


def test_rings_ring_neighbourhood_and_path(client: TestClient) -> None:
    rings = client.get("/v1/rings?top=5", headers=INV)
    assert rings.status_code == 200
    (ring,) = rings.json()
    assert sorted(ring["members"]) == ["a1", "a2", "a3"]
    one = client.get(f"/v1/rings/{ring['id']}", headers=INV).json()
    assert one["id"] == ring["id"]
    hood = client.get("/v1/entities/device/dA/neighbourhood?hops=1", headers=INV).json()
    assert {n["id"] for n in hood["nodes"] if n["kind"] == "user"} == {"a1", "a2", "a3"}
    only_ip = client.get("/v1/entities/user/a1/neighbourhood?hops=2&follow=ip", headers=INV).json()
    assert {n["kind"] for n in only_ip["nodes"]} <= {"user", "ip"}
    path = client.get("/v1/path?src=user:a1&dst=user:a3", headers=INV).json()
    assert path["length"] == 2
    assert [n["id"] for n in path["nodes"]] == ["a1", "dA", "a3"]


def test_errors_are_clear(client: TestClient) -> None:
    assert client.get("/v1/rings").status_code == 401
    assert client.get("/v1/rings", headers={"X-API-Key": "k-score"}).status_code == 403
    bad = client.get("/v1/entities/planet/x/neighbourhood", headers=INV)
    assert bad.status_code == 422
    assert "kind" in bad.text
    assert client.get("/v1/rings/ring-nope", headers=INV).status_code == 404
    assert client.get("/v1/rings?top=0", headers=INV).status_code == 422


def test_graph_store_down_answers_503_never_500(
    make_settings: Callable[..., Settings],
) -> None:
    """The graph client connects when the store is opened: a server that is not there is a
    documented 503 with the error body, not a 500 with a traceback."""
    dead = f"falkordb://127.0.0.1:{free_port()}"
    keys = {hash_api_key("k-inv"): "investigate"}
    with TestClient(create_app(make_settings(api_keys=keys, graph_url=dead))) as c:
        for url in (
            "/v1/rings",
            "/v1/rings/ring-1",
            "/v1/entities/user/a1/neighbourhood",
            "/v1/path?src=user:a1&dst=user:a2",
        ):
            r = c.get(url, headers=INV)
            assert r.status_code == 503, url
            assert r.json()["error"] == "unavailable"
            assert "unreachable" in r.json()["message"]


def test_bad_kinds_name_the_parameter(client: TestClient) -> None:
    bad = client.get("/v1/entities/user/a1/neighbourhood?follow=ip,planet", headers=INV)
    assert bad.status_code == 422
    assert bad.json()["detail"]["errors"][0]["field"] == "follow"
    bad = client.get("/v1/path?src=user:a1&dst=planet:x", headers=INV)
    assert bad.status_code == 422
    assert bad.json()["detail"]["errors"][0]["field"] == "dst"


def test_page_is_served(client: TestClient) -> None:
    page = client.get("/investigate")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/static/investigate.js" in page.text
    assert "/v1/rings/search" in client.get("/static/investigate.js").text
