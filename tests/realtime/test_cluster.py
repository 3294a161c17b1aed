"""The decision's Redis state on a real 3-node Redis Cluster (embedded redis-server, loopback).

The cluster split (one script per entity) must compute exactly what the standalone script does:
the same seeded sequence of transactions runs through both and every answer is compared.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.asyncio import Redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from fraudring.contract.transaction import Transaction
from fraudring.embedded_cluster import EmbeddedCluster
from realtime import ops
from realtime.cluster import ClusterVelocityStore, cluster_client, router_for
from realtime.keys import ENTITY_KINDS, EntityStats, GraphRisk, Keys
from realtime.resp import RespScripts
from realtime.velocity import State, VelocityStore
from tests.support.realtime import T0, key_txn

DAY = 86400.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    c = EmbeddedCluster(Path(tmp_path_factory.mktemp("cluster")), nodes=3).start()
    yield c
    c.stop()


def _sequence(seed: int, n: int) -> list[Transaction]:
    """Bursts and quiet gaps over 40 days; some ids absent, shared cards / devices / ips."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.choice([5.0, 60.0, 900.0, 4 * 3600.0, 2 * DAY], size=n))
    out = []
    for i in range(n):

        def pick(prefix: str, k: int, absent: float) -> str | None:
            return None if rng.random() < absent else f"{prefix}{rng.integers(k)}"

        out.append(
            key_txn(
                txn_id=f"t{i}",
                ts=float(ts[i]),
                amount=float(rng.choice([5.0, 20.0, 80.0, 900.0])),
                user_id=f"u{rng.integers(12)}",
                card_id=pick("c", 8, 0.2),
                device_id=pick("d", 6, 0.3),
                ip=pick("9.9.9.", 5, 0.3),
                merchant_id=pick("m", 4, 0.1),
            )
        )
    return out


def _same(a: State, b: State) -> None:
    assert a.status == b.status == "ok"
    assert a.velocity is not None and b.velocity is not None
    for x, y in zip(a.velocity, b.velocity, strict=True):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12)
    assert a.user_window is not None and b.user_window is not None
    for x, y in zip(a.user_window, b.user_window, strict=True):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12)
    assert a.risks == b.risks
    assert a.stats == b.stats


def _seed_caches(clients: list[redis.Redis | RedisCluster], keys: Keys) -> None:
    risk = GraphRisk(
        score=0.8, ring_id="r1", ring_size=4, ring_fraud_rate=0.5, model_version=None, updated_at=1
    )
    for c in clients:
        c.set(keys.risk("device", "d1"), risk.dumps())
        c.set(keys.risk("user", "u3"), risk.dumps())
        c.set(keys.stats("user", "u1"), EntityStats((30.0,)).dumps())
        c.set(keys.stats("user", "u2"), EntityStats((10.0,)).dumps())
        c.set(keys.stats("merchant", "m1"), EntityStats(tuple(range(7))).dumps())


def test_one_entity_one_slot() -> None:
    keys = Keys("fraudring:")
    for kind in ENTITY_KINDS:
        tagged = [
            keys.risk(kind, "x{y}:1"),
            keys.stats(kind, "x{y}:1"),
            *(keys.velocity(kind, "x{y}:1", w) for w in ("min", "hour", "seen:user", "day")),
        ]
        assert len({key_slot(k.encode()) for k in tagged}) == 1
    # and different entities spread over the slots
    slots = {key_slot(keys.risk("user", f"u{i}").encode()) for i in range(50)}
    assert len(slots) > 40


@pytest.mark.parametrize("route", ["resp", "redis-py"])
def test_cluster_split_matches_the_single_script(
    cluster: EmbeddedCluster, redis_url: str, redis_prefix: str, route: str
) -> None:
    keys = Keys(redis_prefix)
    sync_cluster = RedisCluster.from_url(cluster.url)
    standalone = redis.Redis.from_url(redis_url)
    _seed_caches([standalone, sync_cluster], keys)
    loop = asyncio.new_event_loop()
    single_client = Redis.from_url(redis_url)
    # the standalone store and the cluster store's main Redis need their own namespaces
    other = Keys(redis_prefix + "c:")
    single = VelocityStore(single_client, keys)
    main = Redis.from_url(redis_url)
    ac = cluster_client(cluster.url, timeout_ms=2000)
    fast = RespScripts(redis_url, timeout_s=2) if route == "resp" else None
    router = router_for(cluster.url, timeout_ms=2000) if route == "resp" else None
    split = ClusterVelocityStore(main, other, cluster=ac, fast=fast, router=router)
    _seed_caches([sync_cluster], other)
    try:
        for t in _sequence(seed=3, n=300):
            a = loop.run_until_complete(single.decide(t))
            b = loop.run_until_complete(split.decide(t))
            _same(a, b)
        # a retry is claimed once: in flight, then the stored decision, and never counted again
        t = _sequence(seed=3, n=1)[0]
        assert loop.run_until_complete(split.decide(t)).status == "pending"
        assert loop.run_until_complete(
            split.record(txn_id=t.txn_id, user_id=t.user_id, stored=b"{}", record=b"{}")
        )
        dup = loop.run_until_complete(split.decide(t))
        assert dup.status == "dup" and dup.stored == b"{}"
        # the state really is spread over the three nodes
        per_node = [
            redis.Redis(host="127.0.0.1", port=p).dbsize() for p in cluster.ports
        ]  # fmt: skip
        assert all(n > 0 for n in per_node), per_node
    finally:
        loop.run_until_complete(single_client.aclose())
        loop.run_until_complete(main.aclose())
        loop.run_until_complete(ac.aclose())
        if router is not None and fast is not None:
            router.close()
            fast.close()
        loop.close()
        for prefix in (redis_prefix, other.prefix):
            for key in sync_cluster.scan_iter(
                match=f"{prefix}*", target_nodes=RedisCluster.ALL_NODES
            ):
                sync_cluster.delete(key)
        ops.delete_prefix(standalone, other.prefix)
        sync_cluster.close()
        standalone.close()


def test_replay_applies_velocity_once(
    cluster: EmbeddedCluster, redis_url: str, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    loop = asyncio.new_event_loop()
    main = Redis.from_url(redis_url)
    ac = cluster_client(cluster.url, timeout_ms=2000)
    store = ClusterVelocityStore(main, keys, cluster=ac)
    (t1,) = _sequence(seed=5, n=1)
    try:
        # a spooled decision whose decide never ran: replay applies its velocity, once
        assert loop.run_until_complete(store.replay(t1, stored=b"{}", record=b"{}"))
        assert not loop.run_until_complete(store.replay(t1, stored=b"{}", record=b"{}"))
        later = key_txn(
            txn_id="later",
            ts=t1.epoch + 10,
            amount=1.0,
            user_id=t1.user_id,
            card_id=None,
            device_id=None,
            ip=None,
            merchant_id=None,
        )
        state = loop.run_until_complete(store.decide(later))
        assert state.velocity is not None and state.velocity[0] == 1.0  # user's 1 h count
        assert int(redis.Redis.from_url(redis_url).xlen(keys.decisions_stream)) == 1
    finally:
        loop.run_until_complete(main.aclose())
        loop.run_until_complete(ac.aclose())
        loop.close()


def test_workers_write_and_clear_risks_on_the_cluster(
    cluster: EmbeddedCluster, redis_client: redis.Redis, redis_prefix: str
) -> None:
    from workers.scoring import RiskPlan, clear_removed, write_risks

    keys = Keys(redis_prefix)
    state = RedisCluster.from_url(cluster.url)
    risk = GraphRisk(
        score=0.9, ring_id="r7", ring_size=3, ring_fraud_rate=1.0, model_version=None, updated_at=1
    )
    plan = RiskPlan()
    members = [("user", f"u{i}") for i in range(20)] + [("device", "d1"), ("ip", "1.2.3.4")]
    for kind, entity_id in members:
        plan.add(kind, entity_id, risk)
    try:
        assert write_risks(redis_client, keys, plan, state=state) == len(members)
        assert all(state.get(keys.risk(k, i)) == risk.dumps() for k, i in members)
        assert redis_client.scard(keys.meta("ring:r7")) == len(members)  # the index stays here
        assert redis_client.get(keys.risk("user", "u0")) is None
        assert clear_removed(redis_client, keys, ["r7"], state=state) == len(members)
        assert all(state.get(keys.risk(k, i)) is None for k, i in members)
    finally:
        state.close()
