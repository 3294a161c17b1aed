"""On the demo's world (100,000 transactions, seed 7, hard, 1% fraud; history up to four days
before the end in the graph with the chargebacks known by then), the top of the investigator's
ring queue is planted rings, each with at least one ranked link as evidence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.compute as pc
from fastapi.testclient import TestClient

from api.app import create_app
from fraudring.cli.demo.run import load_graph, split_history
from fraudring.settings import Settings, hash_api_key
from graph.service import open_store
from world.io import read_world
from world.simulate import generate

DAY_US = 86_400 * 1_000_000
INV = {"X-API-Key": "k-inv"}


def test_top_ten_rings_of_the_queue_are_planted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(api_keys={hash_api_key("k-inv"): "investigate"})
    full, hist = tmp_path / "world", tmp_path / "history"
    generate(out=full, transactions=100_000, seed=7, difficulty="hard", fraud_rate=0.01)
    w = read_world(full)
    end_us = int(pc.max(pc.cast(w.transactions["ts"], "int64")).as_py())
    split_history(full, hist, live_from_us=end_us - 4 * DAY_US)
    load_graph(settings, history=hist)
    assert settings.graph_url is not None
    with open_store(settings.graph_url, settings=settings) as store:
        store.detect_rings()
    truth = read_world(hist).truth
    users = read_world(hist).transactions["user_id"]
    planted: dict[str, str] = {}
    typology: dict[str, str] = {}
    for user, member, ring, typ in zip(
        users.to_pylist(),
        truth["user_is_ring_member"].to_pylist(),
        truth["ring_id"].to_pylist(),
        truth["typology"].to_pylist(),
        strict=True,
    ):
        if member and ring:
            planted[user] = ring
            typology[ring] = typ
    with TestClient(create_app(settings)) as c:
        # the page's queue: rings of three or more, by risk
        top = c.get("/v1/rings/search?min_size=3&limit=10", headers=INV).json()["rings"]
        assert len(top) == 10
        for ring in top:
            mine = [planted.get(m) for m in ring["members"]]
            share = sum(r is not None for r in mine) / len(mine)
            print(
                f"{ring['id']}: size {ring['size']}, risk {ring['risk']:.2f}, planted {share:.0%}"
            )
            assert share >= 0.5, ring
            ev = c.get(f"/v1/rings/{ring['id']}/evidence", headers=INV).json()
            assert ev["links"] and ev["links"][0]["risk_drop"] > 0, ring["id"]
            main = max((r for r in mine if r is not None), key=mine.count)
            print(f"  resembles {ev['typology']}, planted as {typology[main]}")
