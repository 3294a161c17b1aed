"""Drift watch (PSI, label quality) and the retrain orchestration, on real Redis and FalkorDB."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudring.settings import Settings
from graph.service import open_store
from realtime import ops
from realtime.keys import Keys
from tests.support.workers import T0, decision, small_world, xadd_all
from workers import drift, retrain
from workers.scoring import heuristic_scorer
from workers.service import Pipeline, drain_decisions


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=20, max_size=300),
)
@settings(max_examples=50)
def test_psi_of_a_sample_against_itself_is_zero(values: list[float]) -> None:
    arr = np.asarray(values)
    assert drift.psi(arr, arr) == pytest.approx(0.0, abs=1e-9)


def test_psi_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    small = drift.psi(ref, rng.normal(0.1, 1, size=5000))
    big = drift.psi(ref, rng.normal(1.0, 1, size=5000))
    assert small < 0.1 < 0.25 < big
    assert math.isnan(drift.psi(ref, np.array([np.nan])))


def _xadd_at(client: redis.Redis, stream: str, ms: int, rec: dict[str, object]) -> None:
    client.xadd(stream, {"d": orjson.dumps(rec)}, id=f"{ms}-*")


def test_drift_check_flags_a_shifted_day_and_measures_label_recall(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = make_settings(drift_psi_bound=0.25)
    keys = Keys(s.redis_prefix)
    now = time.time()
    rng = np.random.default_rng(1)
    base_ms = int((now - 3 * 86400) * 1000)
    for i in range(400):  # reference: small amounts, scores ~0.1
        rec = decision(
            f"r{i}",
            user=f"u{i % 50}",
            ts=T0 + i,
            amount=float(rng.uniform(5, 50)),
            score=float(rng.uniform(0, 0.2)),
        )
        _xadd_at(redis_client, keys.decisions_stream, base_ms + i, rec)
    cur_ms = int((now - 3600) * 1000)
    for i in range(400):  # the last day: ten times the amounts, higher scores
        flagged = i < 20
        rec = decision(
            f"c{i}",
            user=f"u{i % 50}",
            ts=T0 + 10_000 + i,
            amount=float(rng.uniform(50, 500)),
            score=float(rng.uniform(0.3, 0.6)),
            outcome="decline" if flagged else "approve",
        )
        _xadd_at(redis_client, keys.decisions_stream, cur_ms + i, rec)
    drift.set_reference(redis_client, keys, start=now - 3 * 86400 - 1, end=now - 2 * 86400)
    labels = [
        {"kind": "txn", "id": f"c{i}", "label": "fraud", "by": "t", "at": now}
        for i in range(10, 30)
    ]
    for lab in labels:  # 10 of the 20 fraud labels were declined
        redis_client.xadd(keys.labels_stream, {"d": orjson.dumps(lab)})
    out = drift.check(redis_client, keys, s, now=now)
    assert out["reference"]["n"] == 400 and out["current"]["n"] == 400
    assert out["feature_psi"]["log_amount"] > 1 and out["score_psi"] > 1
    assert out["recall"] == pytest.approx(0.5) and out["precision"] == pytest.approx(1.0)
    assert out["breached"] and any("PSI" in r for r in out["reasons"])
    gauges = ops.metrics(redis_client, keys)
    assert gauges["fraudring_drift_breached"] == 1.0 and gauges["fraudring_drift_score_psi"] > 1


def test_drift_check_is_quiet_on_a_stable_stream(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = make_settings()
    keys = Keys(s.redis_prefix)
    now = time.time()
    rng = np.random.default_rng(2)
    for offset, n in ((3 * 86400, 0), (3600, 1000)):
        for i in range(500):
            rec = decision(
                f"t{n + i}",
                user="u1",
                ts=T0 + i * 3600,
                amount=float(rng.uniform(5, 50)),
                score=float(rng.uniform(0, 1)),
            )
            _xadd_at(redis_client, keys.decisions_stream, int((now - offset) * 1000) + i, rec)
    drift.set_reference(redis_client, keys, start=now - 4 * 86400, end=now - 2 * 86400)
    out = drift.check(redis_client, keys, s, now=now)
    assert not out["breached"], out["reasons"]
    assert out["max_feature_psi"] < 0.1


@pytest.fixture
def pipe(make_settings: Callable[..., Settings], redis_client: redis.Redis) -> Iterator[Pipeline]:
    s = make_settings()
    assert s.graph_url is not None
    with open_store(s.graph_url, settings=s) as store:
        store.ensure_schema()
        yield Pipeline(client=redis_client, store=store, settings=s, scorer=heuristic_scorer)


def test_retrain_without_training_data_still_rescores_and_reports(pipe: Pipeline) -> None:
    keys = Keys(pipe.settings.redis_prefix)
    xadd_all(pipe.client, keys.decisions_stream, small_world(users=20, txns=200))
    drain_decisions(pipe, consumer="c", max_seconds=60, block_ms=50)
    for k in pipe.client.scan_iter(match=f"{keys.prefix}risk:*"):
        pipe.client.delete(k)
    assert not (pipe.settings.data_dir / "world").exists()
    report = retrain.run(pipe, reload_scorer=lambda: heuristic_scorer)
    assert report["outcome"] == "not trained" and "no training data" in report["error"]
    assert report["rescore"]["rings"] >= 1 and report["rescore"]["risks_written"] >= 6
    assert pipe.client.get(keys.risk("user", "u0")) is not None
    md = next(Path(p) for p in report["report"] if p.endswith(".md"))
    assert "not trained" in md.read_text()
    last = json.loads(pipe.client.get(keys.meta("retrain:last")) or b"{}")
    assert last["outcome"] == "not trained"


def test_retrain_trains_promotes_and_rescores_with_the_gcn(pipe: Pipeline) -> None:
    """The real pipeline (gnn.service.train_pipeline) on a small world in data_dir/world."""
    from workers.scoring import load_ring_scorer
    from world.io import read_world
    from world.simulate import generate

    world = pipe.settings.data_dir / "world"
    generate(
        out=world, transactions=4000, seed=5, fraud_rate=0.02, progress=False
    )  # labels to validate on
    keys = Keys(pipe.settings.redis_prefix)
    recs = [
        decision(r["txn_id"], user=r["user_id"], ts=r["ts"].timestamp(), card=r["card_id"], device=r["device_id"],
                 ip=r["ip"], merchant=r["merchant_id"], amount=r["amount"])
        for r in read_world(world).transactions.to_pylist()
    ]  # fmt: skip
    xadd_all(pipe.client, keys.decisions_stream, recs)
    drain_decisions(pipe, consumer="c", max_seconds=120, block_ms=50)
    report = retrain.run(
        pipe, reload_scorer=lambda: load_ring_scorer(pipe.settings, store=pipe.store)[0]
    )
    assert report["outcome"] in {"promoted", "kept production"}, report
    assert report["version"] and "val_pr_auc" in report["metrics"]
    assert report["rescore"]["rings"] >= 1
    md = next(Path(p) for p in report["report"] if p.endswith(".md"))
    assert "val_pr_auc" in md.read_text()
    if report["outcome"] == "promoted":  # the new GCN scored the rings: its score rides along
        some = next(pipe.client.scan_iter(match=f"{keys.prefix}risk:{{user:*"))
        risk = orjson.loads(pipe.client.get(some) or b"{}")
        assert risk["model_version"] == report["version"]
        assert risk["gcn_score"] is not None and 0.0 <= risk["gcn_score"] <= 1.0
        # the feature stays the graph's ring risk, which training reproduces
        from graph.repository import CypherStore

        assert isinstance(pipe.store, CypherStore)
        ring = pipe.store.ring(risk["ring_id"])
        assert risk["score"] == pytest.approx(ring.risk)
    assert (
        json.loads(pipe.client.get(keys.meta("drift:reference")) or b"{}")["end"]
        == report["started_at"]
    )
