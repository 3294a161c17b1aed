"""POST /v1/labels (api/routers/labels.py): validated, queued on the labels stream for the workers."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers import labels
from fraudring.settings import Settings, hash_api_key
from realtime.keys import Keys
from tests.support.realtime import stream_entries


def _client(make_settings: Callable[..., Settings]) -> tuple[TestClient, Settings]:
    s = make_settings(
        api_keys={hash_api_key("k-inv"): "investigate", hash_api_key("k-score"): "score"}
    )
    app = create_app(s)
    if not any(getattr(r, "path", "") == "/v1/labels" for r in app.routes):
        app.include_router(labels.router)  # until api/app.py includes it
    return TestClient(app), s


def test_labels_are_queued_on_the_stream(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    client, s = _client(make_settings)
    with client:
        body = {
            "by": "analyst-7",
            "labels": [
                {"kind": "user", "id": "u1", "label": "fraud"},
                {"kind": "txn", "id": "t9", "label": "legitimate", "at": 1.7e9},
            ],
        }
        r = client.post("/v1/labels", json=body, headers={"X-API-Key": "k-inv"})
        assert r.status_code == 202, r.text
        assert r.json()["queued"] == 2
        entries = stream_entries(redis_client, Keys(s.redis_prefix).labels_stream)
        recs = [orjson.loads(f[b"d"]) for _, f in entries]
        assert recs[0]["by"] == "analyst-7" and recs[0]["kind"] == "user" and recs[0]["at"] > 1.7e9
        assert recs[1] == {
            "kind": "txn",
            "id": "t9",
            "label": "legitimate",
            "by": "analyst-7",
            "at": 1.7e9,
        }


def test_bad_labels_get_422_naming_the_field(make_settings: Callable[..., Settings]) -> None:
    client, _ = _client(make_settings)
    with client:
        r = client.post(
            "/v1/labels",
            json={"by": "a", "labels": [{"kind": "planet", "id": "x", "label": "fraud"}]},
            headers={"X-API-Key": "k-inv"},
        )
        assert r.status_code == 422 and "kind" in r.text
        r = client.post(
            "/v1/labels", json={"by": "a", "labels": []}, headers={"X-API-Key": "k-inv"}
        )
        assert r.status_code == 422
        # an id the graph store could not take (a NUL ends the query text) is refused here,
        # not accepted and then lost by the worker
        r = client.post(
            "/v1/labels",
            json={"by": "a", "labels": [{"kind": "user", "id": "u\x00", "label": "fraud"}]},
            headers={"X-API-Key": "k-inv"},
        )
        assert r.status_code == 422
        assert r.json()["detail"]["errors"][0]["field"] == "labels.0.id"
        r = client.post(
            "/v1/labels",
            json={"by": "a", "labels": [{"kind": "user", "id": "u", "label": "fraud"}]},
            headers={"X-API-Key": "k-score"},
        )
        assert r.status_code == 403
