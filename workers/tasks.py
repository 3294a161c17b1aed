"""Thin Celery tasks: each passes ids or nothing and calls a library function.

The stream drains are self-continuing: a drain runs for a bounded time, then asks for the next
one. Per partition of the decision stream, at most one drain waits in the queue (a request
flag) and one runs (a lease), so beat's watchdog kicks, worker restarts and self-continuation
never pile up, and the partitions drain in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from celery import Task
from redis.exceptions import LockError

from fraudring.logs import get_logger
from fraudring.registry import ModelRegistry
from fraudring.settings import Settings, get_settings
from realtime.keys import Keys
from workers import alerts
from workers.app import FraudringTask, app
from workers.scoring import RingScorer, load_ring_scorer
from workers.service import (
    Pipeline,
    drain_decisions,
    drain_labels,
    renew_lease,
    rescore_pending,
)
from workers.streams import consumer_name, worker_redis

log = get_logger(__name__)
DRAIN_SECONDS = 10.0
#: The live GCN scores every node from a full export this often (between, new rings are scored
#: from the members it knows plus the labelled fraud rate; see gnn.service.LiveRingScorer).
GCN_REFRESH_S = 600.0


@dataclass
class Resources:
    settings: Settings
    client: redis.Redis
    keys: Keys
    store: Any
    stack: contextlib.ExitStack
    scorer: RingScorer
    scorer_kind: str
    live: str | None = None
    live_checked: float = 0.0
    refreshed: float = 0.0
    #: the Redis Cluster of the per-entity keys, when configured
    state: redis.Redis | redis.RedisCluster | None = None

    def pipeline(self) -> Pipeline:
        return Pipeline(
            client=self.client,
            store=self.store,
            settings=self.settings,
            scorer=self.scorer,
            state=self.state,
        )


_resources: Resources | None = None
_lock = threading.Lock()


def resources() -> Resources:
    """One Redis client and one graph store per worker process, opened on first use."""
    global _resources
    with _lock:
        if _resources is None:
            from graph.service import open_store

            settings = get_settings()
            assert settings.redis_url is not None and settings.graph_url is not None
            stack = contextlib.ExitStack()
            store = stack.enter_context(open_store(settings.graph_url, settings=settings))
            ensure = getattr(store, "ensure_schema", None)
            if ensure is not None:
                ensure()
            scorer, kind = load_ring_scorer(settings, store=store)
            live = ModelRegistry(settings.models_path).live_version()
            log.info("worker.resources", scorer=kind, graph=settings.graph_name)
            _resources = Resources(
                settings=settings,
                client=worker_redis(settings.redis_url),
                keys=Keys(settings.redis_prefix, partitions=settings.stream_partitions),
                store=store,
                stack=stack,
                scorer=scorer,
                scorer_kind=kind,
                live=live,
                refreshed=time.monotonic(),
                state=(
                    redis.RedisCluster.from_url(settings.redis_cluster_url)
                    if settings.redis_cluster_url
                    else None
                ),
            )
        return _resources


def reload_scorer() -> RingScorer:
    res = resources()
    res.scorer, res.scorer_kind = load_ring_scorer(res.settings, store=res.store)
    res.live = ModelRegistry(res.settings.models_path).live_version()
    res.refreshed = time.monotonic()
    return res.scorer


def _follow_live_model(res: Resources) -> None:
    """Reload the ring scorer when another process promoted a model (checked every 10 s), and
    rescore the whole graph with the GCN every GCN_REFRESH_S (its member risks age)."""
    now = time.monotonic()
    if now - res.live_checked < 10:
        return
    res.live_checked = now
    live = ModelRegistry(res.settings.models_path).live_version()
    stale = res.scorer_kind.startswith("gcn") and now - res.refreshed > GCN_REFRESH_S
    if live != res.live or stale:
        reload_scorer()
        log.info("worker.scorer_reloaded", live=live, scorer=res.scorer_kind)


# -- single-flight helpers ---------------------------------------------------------------------
def _request(res: Resources, name: str, *, force: bool = False) -> bool:
    """True when the caller may enqueue the next run (no other run is waiting)."""
    key = res.keys.meta(f"queued:{name}")
    if force:
        res.client.delete(key)
    return bool(res.client.set(key, b"1", nx=True, ex=max(60, 4 * res.settings.ingest_lease_s)))


@contextlib.contextmanager
def _lease(res: Resources, name: str) -> Iterator[Any]:
    lock = res.client.lock(
        res.keys.meta(f"lease:{name}"), timeout=res.settings.ingest_lease_s, blocking=False
    )
    if not lock.acquire(blocking=False):
        yield None
        return
    try:
        yield lock
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def _send_webhooks(res: Resources, alert_ids: list[str]) -> None:
    if res.settings.alert_webhook_url:
        for alert_id in alert_ids:
            webhook.delay(alert_id)


# -- ingest ------------------------------------------------------------------------------------
def _ingest(partition: int) -> str:
    """The single-flight name of a partition's drain (the first keeps the unpartitioned name)."""
    return "ingest" if partition == 0 else f"ingest:{partition}"


@app.task(name="fraudring.ingest.kick", ignore_result=True)  # type: ignore[untyped-decorator]
def ingest_kick(force: bool = False) -> int:
    """Watchdog (beat, worker start): enqueue each partition's drain unless one is waiting;
    returns how many were enqueued."""
    res = resources()
    sent = 0
    for partition in range(res.keys.partitions):
        if _request(res, _ingest(partition), force=force):
            drain.apply_async(args=(partition,))
            sent += 1
    return sent


@app.task(base=FraudringTask, bind=True, name="fraudring.ingest.drain")  # type: ignore[untyped-decorator]
def drain(self: Task, partition: int = 0) -> dict[str, int]:
    """One partition for DRAIN_SECONDS under its lease, then the next drain of it is queued:
    partitions are drained in parallel, each by one drain at a time."""
    res = resources()
    name = _ingest(partition)
    res.client.delete(res.keys.meta(f"queued:{name}"))
    if not 0 <= partition < res.keys.partitions:  # queued before the setting shrank
        return {"skipped": 1}
    _follow_live_model(res)
    with _lease(res, name) as lease:
        if lease is None:  # another drain runs: come back when its lease may have lapsed
            if _request(res, name):
                drain.apply_async(args=(partition,), countdown=1.0)
            return {"skipped": 1}
        stats = drain_decisions(
            res.pipeline(),
            consumer=consumer_name(),
            partition=partition,
            max_seconds=DRAIN_SECONDS,
            stop_when_idle=False,
            heartbeat=functools.partial(renew_lease, lease, name),
        )
    _send_webhooks(res, stats.alert_ids)
    if _request(res, name):
        drain.apply_async(args=(partition,))
    return {"messages": stats.messages, "ingested": stats.ingested, "rings": stats.rings}


# -- labels and rescoring ----------------------------------------------------------------------
@app.task(name="fraudring.labels.kick", ignore_result=True)  # type: ignore[untyped-decorator]
def labels_kick(force: bool = False) -> bool:
    res = resources()
    if _request(res, "labels", force=force):
        labels_apply.apply_async()
        return True
    return False


@app.task(base=FraudringTask, bind=True, name="fraudring.labels.apply")  # type: ignore[untyped-decorator]
def labels_apply(self: Task) -> int:
    """Apply the labels stream to the graph and rescore the rings the labels touch."""
    res = resources()
    res.client.delete(res.keys.meta("queued:labels"))
    with _lease(res, "labels") as lease:
        if lease is None:
            return 0
        applied = drain_labels(res.pipeline(), consumer=consumer_name())
    if applied and _request(res, "stats"):  # labels are what move the merchants' statistics
        stats_refresh.apply_async(countdown=res.settings.stats_label_gap_s)
    return applied


@app.task(base=FraudringTask, bind=True, name="fraudring.score.pending")  # type: ignore[untyped-decorator]
def score_pending(self: Task) -> int:
    return rescore_pending(resources().pipeline())


@app.task(base=FraudringTask, bind=True, name="fraudring.stats.refresh")  # type: ignore[untyped-decorator]
def stats_refresh(self: Task) -> dict[str, Any]:
    """Beat, every `stats_refresh_s`, and `stats_label_gap_s` after labels were applied (one
    queued at most); single-flight (a slow refresh is not run twice)."""
    from workers import stats

    res = resources()
    res.client.delete(res.keys.meta("queued:stats"))
    with _lease(res, "stats") as lease:
        if lease is None:
            return {"outcome": "skipped: a refresh is running"}
        lease.extend(3600)
        delay = stats.label_delay_days(res.settings)
        return stats.refresh_stats(
            res.client, res.keys, res.store, label_delay_days=delay, state=res.state
        )


@app.task(base=FraudringTask, bind=True, name="fraudring.alerts.webhook")  # type: ignore[untyped-decorator]
def webhook(self: Task, alert_id: str) -> int:
    res = resources()
    return alerts.post_webhook(res.client, res.keys, res.settings, alert_id)


# -- learning ----------------------------------------------------------------------------------
@app.task(base=FraudringTask, bind=True, name="fraudring.train.retrain")  # type: ignore[untyped-decorator]
def retrain(self: Task) -> dict[str, Any]:
    """Nightly (beat, `retrain_cron`) or on demand (`fraudring retrain`, a drift breach)."""
    from workers import retrain as job

    res = resources()
    with _lease(res, "retrain") as lease:
        if lease is None:
            return {"outcome": "skipped: a retrain is running"}
        lease.extend(24 * 3600)  # a retrain takes minutes, not the drain's lease
        pipe = res.pipeline()
        report = job.run(pipe, reload_scorer=reload_scorer)
    return {k: report.get(k) for k in ("outcome", "version", "seconds")}


@app.task(base=FraudringTask, bind=True, name="fraudring.drift.check")  # type: ignore[untyped-decorator]
def drift_check(self: Task) -> dict[str, Any]:
    """Daily (beat, `drift_cron`) or on demand (`fraudring drift`); a breach queues a retrain."""
    from workers import drift

    res = resources()
    out = drift.check(res.client, res.keys, res.settings, now=time.time())
    if out["breached"]:
        retrain.apply_async()
    return {"breached": out["breached"], "reasons": out["reasons"]}
