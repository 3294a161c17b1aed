"""The Celery app: Redis broker, three named queues, late acks, backoff retries, dead-letter.

Started as a process (`celery -A workers.app worker`, or `fraudring worker`, which resolves the
servers first); nothing imports this module. Every broker key carries the settings' Redis prefix
(kombu's ``global_keyprefix``) so a test or a second deployment on the same Redis stays apart.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import worker_ready

from fraudring.errors import InvalidInput, NotFound
from fraudring.logs import get_logger
from fraudring.settings import Settings, SettingsError, get_settings
from realtime.keys import STREAM_CAP, Keys
from workers.streams import worker_redis

log = get_logger(__name__)

QUEUES = ("ingest", "score", "train")
#: A task published while Redis restarts waits it out (kombu's policy): about 20 s, as a
#: worker's own calls do (workers.streams.worker_redis).
PUBLISH_RETRY = {"max_retries": 20, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
#: Dotted task-name prefix -> queue.
ROUTES = {
    "fraudring.ingest.*": {"queue": "ingest"},
    "fraudring.labels.*": {"queue": "score"},
    "fraudring.score.*": {"queue": "score"},
    "fraudring.alerts.*": {"queue": "score"},
    "fraudring.stats.*": {"queue": "score"},
    "fraudring.train.*": {"queue": "train"},
    "fraudring.drift.*": {"queue": "train"},
}


def _cron(expr: str) -> crontab:
    minute, hour, dom, month, dow = expr.split()
    return crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)


def queue_for(task_name: str) -> str:
    for pattern, route in ROUTES.items():
        if task_name.startswith(pattern.rstrip("*")):
            return route["queue"]
    return "score"


def make_app(settings: Settings) -> Celery:
    if settings.redis_url is None:
        raise SettingsError(
            "FRAUDRING_REDIS_URL is unset: start workers with `fraudring worker` (which starts or "
            "finds the embedded runtime) or set the URL"
        )
    app = Celery("fraudring", broker=settings.redis_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="score",
        task_routes=ROUTES,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        # A task published while Redis restarts (a drain's next run, a failed task's retry)
        # waits it out: Celery drops an acks-late task whose retry cannot be published.
        task_publish_retry_policy=PUBLISH_RETRY,
        broker_transport_options={
            "global_keyprefix": settings.redis_prefix,
            # A task of a killed worker comes back after this long (stream messages come back
            # sooner, through XAUTOCLAIM in the ingest task).
            "visibility_timeout": 3600,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
        timezone="UTC",
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        beat_schedule={
            # Watchdogs: each is a no-op when a run is already queued or running.
            "ingest-kick": {"task": "fraudring.ingest.kick", "schedule": 5.0},
            "labels-kick": {"task": "fraudring.labels.kick", "schedule": 5.0},
            "rescore-pending": {"task": "fraudring.score.pending", "schedule": 30.0},
            "stats-refresh": {
                "task": "fraudring.stats.refresh",
                "schedule": settings.stats_refresh_s,
            },
            "retrain-nightly": {
                "task": "fraudring.train.retrain",
                "schedule": _cron(settings.retrain_cron),
            },
            "drift-daily": {
                "task": "fraudring.drift.check",
                "schedule": _cron(settings.drift_cron),
            },
        },
    )
    return app


class FraudringTask(Task):  # type: ignore[misc]
    """Retries with exponential backoff; after the last attempt, records a dead-letter entry."""

    autoretry_for = (Exception,)
    dont_autoretry_for = (InvalidInput, NotFound)
    retry_backoff = 1
    retry_jitter = False
    acks_late = True

    def __init__(self) -> None:
        settings = get_settings()
        self.max_retries = settings.task_max_retries
        self.retry_backoff_max = settings.task_backoff_max_s

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        record_task_failure(
            settings=get_settings(),
            task=self.name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            error=f"{type(exc).__name__}: {exc}",
            attempts=int(self.request.retries) + 1,
        )


def record_task_failure(
    *,
    settings: Settings,
    task: str,
    args: list[Any],
    kwargs: dict[str, Any],
    error: str,
    attempts: int,
) -> None:
    body = {
        "kind": "task",
        "task": task,
        "queue": queue_for(task),
        "args": args,
        "kwargs": kwargs,
        "error": error,
        "attempts": attempts,
        "at": time.time(),
    }
    assert settings.redis_url is not None
    client = worker_redis(settings.redis_url)
    try:
        client.xadd(
            Keys(settings.redis_prefix, partitions=settings.stream_partitions).deadletter,
            {"d": orjson.dumps(body)},
            maxlen=STREAM_CAP,
            approximate=True,
        )
    finally:
        client.close()
    log.error("task.deadlettered", task=task, error=error, attempts=attempts)


app = make_app(get_settings())


@worker_ready.connect  # type: ignore[untyped-decorator]
def _kick_on_start(sender: Any = None, **_: Any) -> None:
    """A (re)started worker resumes the stream drains and refreshes the statistics without
    waiting for beat."""
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "ingest" in queues:
        sender.app.send_task("fraudring.ingest.kick", kwargs={"force": True})
    if "score" in queues:
        sender.app.send_task("fraudring.labels.kick", kwargs={"force": True})
        sender.app.send_task("fraudring.stats.refresh")
