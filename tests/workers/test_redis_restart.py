"""A worker's Redis calls ride out a restart of Redis (kill -9, back on its port a second later)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis

from fraudring.runtime import EmbeddedServer
from workers.streams import worker_redis


@pytest.mark.parametrize("client_kind", ["worker", "plain"])
def test_a_call_during_a_redis_restart_waits_for_it(client_kind: str, tmp_path: Path) -> None:
    """Before: a drain's call failed at once, its retry could not be published to the same
    Redis, and Celery dropped the task: a partition was no longer drained (fault bench)."""
    server = EmbeddedServer(tmp_path / "plain", graph=False).start()
    restart = threading.Timer(0, lambda: None)
    try:
        url, port = server.url, server.port
        client = worker_redis(url) if client_kind == "worker" else redis.Redis.from_url(url)
        client.set("k", "v")
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGKILL)
        server._proc.wait(timeout=10)
        server.owned = False  # as the fault bench restarts it: same port, same files

        restart = threading.Timer(1.0, lambda: server.start(port=port, timeout_s=60))
        restart.start()
        started = time.monotonic()
        if client_kind == "plain":  # the default retry gives up within the second
            with pytest.raises(redis.ConnectionError):
                client.get("k")
            return
        assert client.get("k") == b"v"
        assert time.monotonic() - started >= 0.5
    finally:
        restart.join()
        server.owned = True
        server.stop()
