"""The investigator workbench through the API, on real Redis and embedded FalkorDB: evidence,
history, cases, labels with confirmation and undo, lists honoured by the next decision, the
review queue, export, and the errors (404 naming the id, 422 on bad filters, 403 by scope)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from fraudring.settings import Settings, hash_api_key
from graph.schemas import TxnRecord
from graph.service import open_store

T0 = 1_750_000_000.0
INV = {"X-API-Key": "k-inv"}
ADMIN = {"X-API-Key": "k-admin"}
SCORE = {"X-API-Key": "k-score"}


def rec(i: int, user: str, *, device: str) -> TxnRecord:
    return TxnRecord(f"t{i}", T0 + i * 60, user, f"card-{user}", device, None, "m1", 10.0 + i)


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    keys = {
        hash_api_key("k-inv"): "alice:investigate",
        hash_api_key("k-admin"): "root:investigate,admin",
        hash_api_key("k-score"): "score",
    }
    # a loaded CI machine must not turn a decision degraded (no lists read) by a slow reply
    settings = make_settings(api_keys=keys, redis_timeout_ms=2000)
    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        store.ensure_schema()
        store.ingest(
            [
                rec(1, "a1", device="dA"),
                rec(2, "a2", device="dA"),
                rec(3, "a3", device="dA"),
                rec(4, "a3", device="dB"),
                rec(5, "a4", device="dB"),
                rec(6, "b1", device="dZ"),
            ]
        )
        store.detect_rings()
    with TestClient(create_app(settings)) as c:
        yield c


def ring_id(c: TestClient) -> str:
    rid: str = c.get("/v1/rings/search", headers=INV).json()["rings"][0]["id"]
    return rid


def txn(i: int, user: str, *, device: str = "d-new") -> dict[str, object]:
    ts = datetime.now(UTC).isoformat()
    return {
        "txn_id": f"live-{i}",
        "ts": ts,
        "user_id": user,
        "device_id": device,
        "amount": 20.0,
        "currency": "EUR",
        "merchant_id": "m1",
    }


def test_evidence_history_and_export(client: TestClient) -> None:
    rid = ring_id(client)
    ev = client.get(f"/v1/rings/{rid}/evidence", headers=INV).json()
    assert ev["links"][0]["id"] == "dA" and ev["links"][0]["risk_drop"] > 0
    assert rid in ev["narrative"]
    ent = client.get("/v1/entities/device/dA/evidence", headers=INV).json()
    assert ent["rings"] == [rid] and ent["degree"] == 3
    page = client.get("/v1/entities/user/a3/transactions?limit=1", headers=INV).json()
    assert [t["txn_id"] for t in page["transactions"]] == ["t4"]
    more = client.get(
        f"/v1/entities/user/a3/transactions?before={page['next_before']}", headers=INV
    )
    assert [t["txn_id"] for t in more.json()["transactions"]] == ["t3"]
    tl = client.get(f"/v1/rings/{rid}/timeline", headers=INV).json()
    assert {e["member"] for e in tl["events"] if e["event"] == "joined"} == {"a1", "a2", "a3", "a4"}
    csv = client.get(f"/v1/rings/{rid}/export?format=csv", headers=INV)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("user_id,") and len(csv.text.splitlines()) == 6
    gml = client.get(f"/v1/rings/{rid}/export?format=graphml", headers=INV)
    assert len(ET.fromstring(gml.content).findall(".//{*}edge")) == 5
    png = client.get(f"/v1/rings/{rid}/export?format=png", headers=INV)
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    js = client.get("/v1/entities/device/dA/export?format=json&hops=1", headers=INV).json()
    assert {n["id"] for n in js["nodes"]} == {"dA", "a1", "a2", "a3"}
    assert io.BytesIO(png.content).getbuffer().nbytes > 1000


def test_errors_name_ids_filters_and_scopes(client: TestClient) -> None:
    for url in (
        "/v1/rings/ring-nope/evidence",
        "/v1/entities/device/d-nope/evidence",
        "/v1/entities/user/u-nope/transactions",
        "/v1/decisions/txn-nope",
        "/v1/cases/case-999",
        "/v1/rings/ring-nope/export?format=csv",
    ):
        r = client.get(url, headers=INV)
        assert r.status_code == 404, url
        assert "nope" in r.json()["message"] or "999" in r.json()["message"], url
    for url in (
        "/v1/rings/search?typology=bank_robbery",
        "/v1/rings/search?min_risk=2",
        "/v1/rings/search?new_since=-1",
        "/v1/rings/search?limit=0",
        "/v1/cases?status=sleeping",
        "/v1/lists?action=ban",
        "/v1/rings/ring-x/export?format=docx",
    ):
        r = client.get(url, headers=INV)
        assert r.status_code == 422, url
        assert r.json()["detail"]["errors"][0]["field"], url
    for url in ("/v1/rings/search", "/v1/review", "/v1/cases", "/v1/lists", "/v1/decisions/t1"):
        assert client.get(url, headers=SCORE).status_code == 403, url
    block = {"action": "block", "kind": "user", "id": "a1", "reason": "test"}
    r = client.post("/v1/actions", json=block, headers=INV)
    assert r.status_code == 403 and "admin" in r.json()["message"]
    r = client.post(
        "/v1/lists",
        json={"action": "block", "entities": [{"kind": "user", "id": "a1"}], "reason": "x"},
        headers=INV,
    )
    assert r.status_code == 403


def test_block_is_honoured_by_the_next_decision_with_the_list_named(client: TestClient) -> None:
    rid = ring_id(client)
    body = {"action": "block", "ring_id": rid, "reason": "ring confirmed", "ttl_s": 3600}
    pre = client.post("/v1/actions/preview", json=body, headers=INV).json()
    assert pre["counts"] == {"user": 4, "device": 2}
    assert set(pre["legitimate_looking"]) == {"a1", "a2", "a3", "a4"}
    before = client.post("/v1/decisions", json=txn(1, "a2"), headers=SCORE).json()
    assert before["decision"] != "decline"
    applied = client.post("/v1/actions", json=body, headers=ADMIN)
    assert applied.status_code == 201
    assert {e["by"] for e in applied.json()["entries"]} == {"root"}
    d = client.post("/v1/decisions", json=txn(2, "a2"), headers=SCORE).json()
    assert d["decision"] == "decline"
    assert {"name": "block_list:user:a2", "action": "decline", "score": None} in d["explanation"][
        "rules"
    ]
    assert any("block list" in n and "root" in n for n in d["explanation"]["notes"])
    # a device of the ring is blocked too: a new account on it is declined
    d = client.post("/v1/decisions", json=txn(3, "fresh", device="dB"), headers=SCORE).json()
    assert (
        d["decision"] == "decline"
        and d["explanation"]["rules"][-1]["name"] == "block_list:device:dB"
    )
    got = client.get("/v1/decisions/live-3", headers=INV).json()
    assert got["decision"] == "decline"
    listed = client.get("/v1/lists?action=block&kind=device", headers=INV).json()
    assert listed["total"] == 2
    r = client.delete("/v1/lists/user/a2?reason=mistake", headers=ADMIN)
    assert r.status_code == 200
    d = client.post("/v1/decisions", json=txn(4, "a2"), headers=SCORE).json()
    assert not any(r["name"].startswith("block_list:user") for r in d["explanation"]["rules"])
    step = {"action": "step_up", "entities": [{"kind": "user", "id": "b1"}], "reason": "odd"}
    assert client.post("/v1/lists", json=step, headers=INV).status_code == 201
    d = client.post("/v1/decisions", json=txn(5, "b1"), headers=SCORE).json()
    assert d["decision"] == "review" and d["review_means"] == "step_up"
    queue = client.get("/v1/review", headers=INV).json()
    assert [i["txn_id"] for i in queue["items"]] == ["live-5"]
    audit = client.get("/v1/audit?target=user:a2", headers=INV).json()
    assert [a["what"] for a in audit] == ["list.remove", "list.block"]


def test_cases_labels_confirmation_and_undo(client: TestClient) -> None:
    rid = ring_id(client)
    case = client.post(
        "/v1/cases",
        json={"subject_kind": "ring", "subject_id": rid, "reason": "top of the queue"},
        headers=INV,
    )
    assert case.status_code == 201 and case.json()["created_by"] == "alice"
    cid = case.json()["id"]
    again = client.post(
        "/v1/cases", json={"subject_kind": "ring", "subject_id": rid, "reason": "x"}, headers=INV
    )
    assert again.status_code == 409 and cid in again.json()["message"]
    whole = {"kind": "ring", "id": rid, "label": "fraud", "reason": "all of them", "case_id": cid}
    r = client.post("/v1/investigate/labels", json=whole, headers=INV)
    assert r.status_code == 409 and "4 members" in r.json()["message"]
    one = {"kind": "user", "id": "a4", "label": "fraud", "reason": "chargeback", "case_id": cid}
    r = client.post("/v1/investigate/labels", json=one, headers=INV)
    assert r.status_code == 200
    out = r.json()
    assert out["targets"] == [["user", "a4", None, "fraud"]] and out["who"] == "alice"
    assert out["rings"][0]["fraud_n"] == 1
    undone = client.post(
        f"/v1/investigate/labels/{out['event_id']}/undo",
        json={"reason": "wrong account"},
        headers=INV,
    )
    assert undone.status_code == 200 and undone.json()["rings"][0]["fraud_n"] == 0
    twice = client.post(
        f"/v1/investigate/labels/{out['event_id']}/undo", json={"reason": "again"}, headers=INV
    )
    assert twice.status_code == 409
    assert client.get("/v1/entities/user/a4/evidence", headers=INV).json()["label"] is None
    r = client.patch(f"/v1/cases/{cid}", json={"status": "closed"}, headers=INV)
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["field"] == "disposition"
    r = client.patch(
        f"/v1/cases/{cid}",
        json={"status": "investigating", "assignee": "bob", "note": "calling the bank"},
        headers=INV,
    )
    events = [e["type"] for e in r.json()["events"]]
    assert events == ["opened", "label", "undo", "status", "assignee", "note"]
    assert all(e["who"] == "alice" for e in r.json()["events"])
    listed = client.get("/v1/cases?status=investigating&assignee=bob", headers=INV).json()
    assert [c["id"] for c in listed["cases"]] == [cid]
    assert client.get("/v1/cases?status=open", headers=INV).json()["total"] == 0


def test_ring_search_filters(client: TestClient) -> None:
    rid = ring_id(client)
    assert client.get("/v1/rings/search?q=a3", headers=INV).json()["rings"][0]["id"] == rid
    assert client.get("/v1/rings/search?q=dB", headers=INV).json()["total"] == 1
    assert client.get("/v1/rings/search?q=b1", headers=INV).json()["total"] == 0
    assert client.get("/v1/rings/search?min_size=5", headers=INV).json()["total"] == 0
    assert client.get("/v1/rings/search?new_since=4000000000", headers=INV).json()["total"] == 0
    typ = client.get("/v1/rings/search", headers=INV).json()["typology"][rid]
    assert client.get(f"/v1/rings/search?typology={typ}", headers=INV).json()["total"] == 1


def test_docs_render_from_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "googleapis" not in html
        for src in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/redoc.standalone.js"):
            if src.rsplit("/", 1)[1].split(".")[0] in html:
                assert client.get(src).status_code == 200
    assert client.get("/static/vendor/cytoscape.min.js").status_code == 200


def test_a_review_keeps_one_expiring_copy_of_its_explanation(
    client: TestClient, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> None:
    """The review queue shows a review's explanation from its decision record, the only copy,
    kept `review_keep_s` (30 d) instead of the idempotency window, and back to that window once
    the review is resolved."""
    step = {"action": "step_up", "entities": [{"kind": "user", "id": "a2"}], "reason": "odd"}
    assert client.post("/v1/lists", json=step, headers=INV).status_code == 201
    d = client.post("/v1/decisions", json=txn(7, "a2"), headers=SCORE).json()
    assert d["decision"] == "review"
    r = redis.Redis.from_url(redis_url)
    key = f"{redis_prefix}decision:live-7"
    assert r.keys(f"{redis_prefix}queue:review:*") == []  # no second copy
    raw = r.get(key)
    assert isinstance(raw, bytes) and raw.count(b"step_up_list:user:a2") == 1
    assert 29 * 86400 < r.ttl(key) <= 30 * 86400
    (item,) = client.get("/v1/review", headers=INV).json()["items"]
    assert item["txn_id"] == "live-7"
    assert item["decision"]["explanation"]["rules"][-1]["name"] == "step_up_list:user:a2"
    settings = make_settings()
    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        store.ingest([TxnRecord("live-7", T0 + 900, "a2", None, "d-new", None, "m1", 20.0)])
    res = client.post(
        "/v1/review/live-7/resolve", json={"label": "fraud", "reason": "called"}, headers=INV
    )
    assert res.status_code == 200
    assert client.get("/v1/review", headers=INV).json()["items"] == []
    assert 0 < r.ttl(key) <= settings.idempotency_ttl_s
    assert client.get("/v1/decisions/live-7", headers=INV).json()["decision"] == "review"


def test_ring_timeline_serves_the_recorded_ring_events(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    rid = ring_id(client)
    settings = make_settings()
    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        store.ingest([rec(9, "a5", device="dA")])
        store.detect_rings(touched_users=["a5"])
    tl = client.get(f"/v1/rings/{rid}/timeline", headers=INV).json()
    assert [(c["kind"], c["joined"], c["size"]) for c in tl["changes"]] == [
        ("appeared", ["a1", "a2", "a3", "a4"], 4),
        ("grew", ["a5"], 5),
    ]
    grew = next(e for e in tl["events"] if e["event"] == "grew")
    assert grew["members"] == ["a5"] and grew["detail"] == "grew to 5: a5 joined"
    missing = client.get("/v1/rings/ring-nope/timeline", headers=INV)
    assert missing.status_code == 404 and "ring-nope" in missing.json()["message"]
