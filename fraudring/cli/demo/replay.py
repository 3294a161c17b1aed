"""The demo's live replay: decisions through the API in time order, labels as their time comes.

The replay runs days of simulated time a minute, where the workers apply labels within seconds
(beat's kick) and refresh the merchants' and users' statistics every few minutes of real time;
`Pacer` keeps the two clocks in step: every 6 simulated hours it has the labels applied, waits
for the graph to hold every decision, and for one statistics refresh.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from fraudring.errors import FraudringError
from fraudring.settings import Settings
from realtime.keys import Keys

STATS_EVERY_S = 6 * 3600.0
#: While the demo keeps serving: how often the label applier is kicked (beat's `labels-kick`).
LABELS_KICK_S = 5.0


class DemoError(FraudringError):
    status_code = 500
    code = "demo_failed"


def _behind(lag: dict[str, int]) -> bool:
    return bool(lag["pending"] or lag["undelivered"])


@dataclass
class Pacer:
    """At every `every_s` of simulated time, do what the workers' beat does every few seconds or
    minutes of real time: apply the labels posted so far to the graph, and refresh the
    statistics once the graph holds every decision and label; wait for both."""

    client: redis.Redis
    settings: Settings
    redis_url: str
    every_s: float = STATS_EVERY_S
    refreshes: int = 0
    waited_s: float = 0.0  # left out of the replay's decisions per second
    _next: float | None = None
    _celery: Any = None

    def tick(self, now: float) -> None:
        if self._next is not None and now < self._next:
            return
        if self._next is not None:
            self.catch_up()
        self._next = (now // self.every_s + 1) * self.every_s

    def _send(self, name: str, **kwargs: Any) -> None:
        from fraudring.runtime import celery_client

        if self._celery is None:
            self._celery = celery_client(self.redis_url, self.settings.redis_prefix)
        self._celery.send_task(name, kwargs=kwargs, queue="score")

    def serve_labels(self, api: subprocess.Popen[bytes], *, every_s: float = LABELS_KICK_S) -> None:
        """Until the API process exits, kick the label applier as beat would: the demo runs no
        beat, and a label posted on the investigator page would otherwise wait in its stream."""
        while api.poll() is None:
            self._send("fraudring.labels.kick")
            time.sleep(every_s)

    def catch_up(self, *, timeout_s: float = 120.0) -> None:
        from realtime.keys import LABEL_GROUP
        from realtime.ops import stream_lag

        t0 = time.perf_counter()
        keys = Keys(self.settings.redis_prefix, partitions=self.settings.stream_partitions)
        self._send("fraudring.labels.kick", force=True)
        deadline = time.monotonic() + timeout_s
        while _behind(stream_lag(self.client, keys.labels_stream, LABEL_GROUP)):
            if time.monotonic() > deadline:
                raise DemoError(f"labels not applied within {timeout_s:.0f} s; see worker log")
            time.sleep(0.1)
        wait_drained(self.client, self.settings)
        before = self.client.get(keys.meta("stats_refreshes"))
        self._send("fraudring.stats.refresh")
        while self.client.get(keys.meta("stats_refreshes")) == before:
            if time.monotonic() > deadline:
                raise DemoError(f"no statistics refresh within {timeout_s:.0f} s; see worker log")
            time.sleep(0.1)
        self.refreshes += 1
        self.waited_s += time.perf_counter() - t0


@dataclass
class LiveResult:
    """Per live transaction: the answer the API gave, in replay order."""

    txn_ids: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    ring_seen: list[bool] = field(default_factory=list)
    degraded: int = 0
    seconds: float = 0.0
    labels_posted: int = 0


def _txn_json(row: dict[str, Any]) -> dict[str, Any]:
    body = {
        k: row[k] for k in ("txn_id", "user_id", "amount", "currency") if row.get(k) is not None
    }
    body["ts"] = row["ts"].isoformat()
    for k in ("card_id", "device_id", "ip", "merchant_id", "merchant_category", "payee_user_id"):
        if row.get(k) is not None:
            body[k] = row[k]
    return body


def replay(
    *,
    client: httpx.Client,
    txns: pa.Table,
    labels: pa.Table,
    live_from: float,
    console: Console,
    pacer: Pacer | None = None,
    batch: int = 100,
) -> LiveResult:
    """Send `txns` through the batch endpoint in time order; post labels as their time comes."""
    res = LiveResult()
    ts = pc.divide(pc.cast(pc.cast(txns["ts"], pa.int64()), pa.float64()), 1e6).to_numpy()
    lab_ts = pc.divide(
        pc.cast(pc.cast(labels["label_ts"], pa.int64()), pa.float64()), 1e6
    ).to_numpy()
    order = np.argsort(lab_ts, kind="stable")
    lab_ids = labels["txn_id"].to_numpy(zero_copy_only=False)[order]
    lab_vals = labels["label"].to_numpy()[order]
    lab_ts = lab_ts[order]
    li = int(np.searchsorted(lab_ts, ts[0], side="left"))
    rows = txns.to_pylist()
    t0 = time.perf_counter()
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replay", total=len(rows))
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            now = float(ts[min(start + batch, len(rows)) - 1])
            r = client.post(
                "/v1/decisions/batch", json={"transactions": [_txn_json(x) for x in chunk]}
            )
            if r.status_code != 200:
                raise DemoError(f"batch at row {start} answered {r.status_code}: {r.text[:500]}")
            for x, d in zip(chunk, r.json()["decisions"], strict=True):
                res.degraded += bool(d["degraded"])
                if ts[start] >= live_from:
                    res.txn_ids.append(x["txn_id"])
                    res.decisions.append(d["decision"])
                    res.scores.append(float("nan") if d["score"] is None else float(d["score"]))
                    res.ring_seen.append(bool((d.get("explanation") or {}).get("ring")))
            lj = int(np.searchsorted(lab_ts, now, side="right"))
            if lj > li:
                res.labels_posted += post_labels(
                    client, lab_ids[li:lj], lab_vals[li:lj], lab_ts[li:lj]
                )
                li = lj
            if pacer is not None:
                pacer.tick(now)
            bar.update(task, advance=len(chunk))
    res.seconds = time.perf_counter() - t0 - (pacer.waited_s if pacer is not None else 0.0)
    return res


def post_labels(client: httpx.Client, ids: np.ndarray, vals: np.ndarray, at: np.ndarray) -> int:
    sent = 0
    for s in range(0, len(ids), 500):
        body = {
            "by": "chargebacks",
            "labels": [
                {
                    "kind": "txn",
                    "id": str(i),
                    "label": "fraud" if v == 1 else "legitimate",
                    "at": float(t),
                }
                for i, v, t in zip(
                    ids[s : s + 500], vals[s : s + 500], at[s : s + 500], strict=True
                )
            ],
        }
        r = client.post("/v1/labels", json=body)
        if r.status_code != 202:
            raise DemoError(f"labels answered {r.status_code}: {r.text[:300]}")
        sent += len(body["labels"])
    return sent


def wait_drained(
    client: redis.Redis, settings: Settings, *, timeout_s: float = 300
) -> dict[str, int]:
    """Wait until the worker has ingested every decision in the stream."""
    from realtime.ops import decision_lag

    keys = Keys(settings.redis_prefix, partitions=settings.stream_partitions)
    deadline = time.monotonic() + timeout_s
    lag: dict[str, int] = {}
    while time.monotonic() < deadline:
        lag = decision_lag(client, keys)
        if not _behind(lag):
            return lag
        time.sleep(0.5)
    raise DemoError(f"the worker did not drain the decision stream in {timeout_s:.0f} s: {lag}")
