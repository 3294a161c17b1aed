"""Faults the decision path must survive without losing an answered decision: a Redis that comes
back without its last writes, a full disk, a readiness check that only pinged.

A full disk is a small tmpfs the test mounts (root only; skipped otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from fraudring.settings import Settings
from realtime.schemas import Transaction
from realtime.service import DecisionEngine
from tests.support.realtime import OwnRedis, decision_records, txn

pytestmark = pytest.mark.faults


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = DecisionEngine(settings)
        self.run(self.engine.upkeep())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def decide(self, i: int, **over: Any) -> dict[str, Any]:
        out = self.run(self.engine.decide(Transaction.model_validate(txn(i, **over))))
        return dict(orjson.loads(out.body))

    def close(self) -> None:
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture
def engine_for(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(**over: Any) -> Engine:
        e = Engine(make_settings(**over))
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis that keeps nothing across a kill: the worst an fsync window can do."""
    from fraudring.runtime import free_port

    (tmp_path / "volatile").mkdir()
    server = OwnRedis(directory=tmp_path / "volatile", port=free_port(), persist=False).start()
    yield server
    server.stop()


def _kill9(server: OwnRedis) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.proc = None


def test_decisions_a_restarted_redis_lost_are_recorded_again(
    engine_for: Callable[..., Engine], volatile_redis: OwnRedis
) -> None:
    """Before: 964 decisions answered `degraded: false` vanished with a kill -9 of Redis."""
    e = engine_for(redis_url=volatile_redis.url)
    for i in range(20):
        assert not e.decide(i)["degraded"]
    _kill9(volatile_redis)
    volatile_redis.start()  # same port, nothing kept
    assert e.run(e.engine.recover_after_restart()) == 20
    keys = e.engine.keys
    records = decision_records(volatile_redis.client(), keys)
    ids = [r["txn"]["txn_id"] for r in records]
    assert sorted(ids) == sorted(f"t{i}" for i in range(20)), ids
    assert e.run(e.engine.recover_after_restart()) == 0  # once
    assert e.decide(3)["txn_id"] == "t3"  # the retry finds the re-recorded decision
    assert len(decision_records(volatile_redis.client(), keys)) == 20
    report = volatile_redis.client().get(keys.meta("redis_recovery"))
    assert report is not None and orjson.loads(report)["missing"] == 20


# -- a full disk ----------------------------------------------------------------------------------
@contextlib.contextmanager
def small_disk(path: Path, *, size_kb: int = 256) -> Iterator[Path]:
    """A tmpfs of `size_kb`, filled to the last block."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        (path / "spool").mkdir()
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_spools_to_the_fallback_and_readyz_says_so(
    engine_for: Callable[..., Engine], own_redis_server: OwnRedis, tmp_path: Path
) -> None:
    """Before: 296 of 600 degraded decisions could not be spooled and /readyz said ready."""
    with small_disk(tmp_path / "disk") as disk:
        e = engine_for(
            redis_url=own_redis_server.url,
            data_dir=disk,
            model_dir=tmp_path / "models",
            spool_fallback_dir=tmp_path / "fallback",
        )
        ok, detail = e.engine.spool.writable()
        assert not ok and "No space left" in detail
        own_redis_server.stop()
        bodies = [e.decide(i) for i in range(30)]
        assert all(b["degraded"] for b in bodies)
        assert (tmp_path / "fallback" / "decisions.jsonl").exists()
        own_redis_server.start()
        recorded, deadline = 0, time.monotonic() + 10
        while recorded < 30 and time.monotonic() < deadline:
            time.sleep(0.3)  # the engine skips Redis for 250 ms after a failure
            recorded += e.run(e.engine.replay_spool())[0]
        assert recorded == 30
        keys = e.engine.keys
        records = decision_records(own_redis_server.client(), keys)
        assert len({r["txn"]["txn_id"] for r in records}) == 30 == len(records)


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[OwnRedis]:
    from tests.support.realtime import own_redis

    with own_redis(tmp_path / f"own-{uuid.uuid4().hex[:6]}") as server:
        yield server


def test_readyz_probe_is_a_write(
    engine_for: Callable[..., Engine], own_redis_server: OwnRedis
) -> None:
    """Before: /readyz sent PING, which a Redis refusing writes still answers."""
    e = engine_for(redis_url=own_redis_server.url)
    assert e.run(e.engine.ping())[0]
    client = own_redis_server.client()
    client.config_set("maxmemory", "1")  # refuses every write (OOM), still answers PING
    try:
        assert client.ping()
        ok, detail = e.run(e.engine.ping())
        assert not ok and "maxmemory" in detail
    finally:
        client.config_set("maxmemory", "0")


def test_no_redis_at_all_is_not_ready(engine_for: Callable[..., Engine]) -> None:
    from fraudring.runtime import free_port

    e = engine_for(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert not e.run(e.engine.ping())[0]


# -- signals --------------------------------------------------------------------------------------
def _start_cli(args: list[str], settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    from tests.support.workers import ROOT, worker_env

    return subprocess.Popen(
        [sys.executable, "-m", "fraudring.cli", *args],
        cwd=ROOT, env=worker_env(settings), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _descendants(pid: int, *, at_least: int, log: Path) -> list[psutil.Process]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = psutil.Process(pid).children(recursive=True)
        if len(kids) >= at_least:
            time.sleep(2.0)  # let them finish starting (and install their handlers)
            return list(psutil.Process(pid).children(recursive=True))
        time.sleep(0.2)
    raise AssertionError(f"no child process started\n{log.read_text()[-2000:]}")


def _gone(procs: list[psutil.Process], *, timeout: float = 30) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return list(alive)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_to_fraudring_worker_stops_its_celery_child(
    make_settings: Callable[..., Settings], tmp_path: Path, sig: signal.Signals
) -> None:
    """Before: `kill -TERM` of `fraudring worker` left its Celery child running (parent pid 1)."""
    log = tmp_path / "worker.log"
    proc = _start_cli(["worker", "--queues", "ingest", "--concurrency", "1"], make_settings(), log)
    kids = _descendants(proc.pid, at_least=1, log=log)
    try:
        proc.send_signal(sig)
        proc.wait(timeout=90)
        alive = _gone(kids)
        assert not alive, f"left running after {sig.name}: {alive}"
        if sig != signal.SIGKILL:
            assert proc.returncode != 0 or sig == signal.SIGINT
    finally:  # a failed run must not leave a worker behind (it would be an orphan by now)
        for p in [*kids, psutil.Process(proc.pid)] if proc.poll() is None else kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def test_sigterm_to_fraudring_serve_stops_its_api_workers(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from fraudring.runtime import free_port

    log = tmp_path / "serve.log"
    proc = _start_cli(["serve", "--port", str(free_port()), "--workers", "2"], make_settings(), log)
    kids = _descendants(proc.pid, at_least=2, log=log)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert not _gone(kids)
    finally:
        for p in [*kids, psutil.Process(proc.pid)] if proc.poll() is None else kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


# -- the whole system under a fault (the short form of `fraudring bench faults`) -----------------
@pytest.fixture(scope="module")
def small_world_requests(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    from bench.stream_support import world_requests
    from world.simulate import generate

    out = tmp_path_factory.mktemp("faults-world")
    generate(out=out / "world", transactions=600, seed=7, progress=False)
    return world_requests(out / "world")


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["worker_kill", "falkordb_kill", "redis_kill", "full_disk"])
def test_no_answered_decision_is_lost_under_a_fault(
    fault: str, small_world_requests: list[dict[str, Any]], tmp_path: Path
) -> None:
    from bench.faults import run_fault

    out = run_fault(fault, txns=small_world_requests, tmp=tmp_path / fault)
    if "skipped" in out:
        pytest.skip(str(out["skipped"]))
    assert out["answered"] + out["refused"] + out["errors"] == 600, out
    assert out["errors"] == 0, out
    for figure in ("lost_stream", "dup_stream", "lost_graph", "dup_graph"):
        assert out[figure] == 0, out
    if fault in ("redis_kill", "full_disk"):
        assert out["readyz_503"] > 0, out  # the fault was visible while it lasted


def test_an_embedded_server_killed_is_restarted_on_its_port(tmp_path: Path) -> None:
    """The process that started the embedded runtime brings a killed server back, same URL."""
    import redis

    from fraudring.runtime import EmbeddedServer

    server = EmbeddedServer(tmp_path / "plain", graph=False).start()
    try:
        server.supervise(every_s=0.1)
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert server._proc is not None
        first = server._proc.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if server._proc is not None and server._proc.pid != first and client.ping():
                    break
            time.sleep(0.1)
        assert server._proc is not None and server._proc.pid != first
        assert client.get("k") == b"v"  # the append-only file kept it
    finally:
        server.stop()
