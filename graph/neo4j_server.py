"""A local Neo4j Community server for tests, benchmarks and the demo (tools/neo4j).

The Maven module under tools/neo4j runs Neo4j 5.26 in process on a free loopback port with
Bolt and authentication. It is built once (`mvn package`; Maven's local repository caches the
downloads, and a jar newer than its sources is reused) and started with a fresh random password
per run. Production deployments run the Neo4j image of docker-compose.yml, not this.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fraudring.errors import Unavailable
from fraudring.logs import get_logger

log = get_logger(__name__)

TOOL_DIR = Path(__file__).resolve().parents[1] / "tools" / "neo4j"
JAR = TOOL_DIR / "target" / "fraudring-neo4j.jar"
USER = "neo4j"


class Neo4jServerError(Unavailable):
    code = "neo4j_server"


def missing() -> str | None:
    """Why the local Neo4j server cannot be built or started here, or None if it can."""
    if not (TOOL_DIR / "pom.xml").is_file():
        return f"{TOOL_DIR / 'pom.xml'} not found (the Neo4j server needs a source checkout)"
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (the local Neo4j server needs Java 17+ and Maven)"
    return None


def _sources() -> list[Path]:
    return [TOOL_DIR / "pom.xml", *sorted(p for p in (TOOL_DIR / "src").rglob("*") if p.is_file())]


def up_to_date() -> bool:
    if not JAR.is_file() or not all((JAR.parent / d).is_dir() for d in ("lib", "plugins")):
        return False
    built = JAR.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in _sources())


def build(*, timeout_s: float = 1800.0) -> Path:
    """The server's jar, built by Maven unless it is newer than its sources; one build at a
    time (a lock file), so parallel test runs do not race."""
    reason = missing()
    if reason is not None:
        raise Neo4jServerError(reason)
    (TOOL_DIR / "target").mkdir(exist_ok=True)
    with open(TOOL_DIR / "target" / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if up_to_date():
            return JAR
        t0 = time.monotonic()
        log.info("neo4j.building", pom=str(TOOL_DIR / "pom.xml"))
        done = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(TOOL_DIR / "pom.xml"), "package"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0 or not JAR.is_file():
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise Neo4jServerError(f"building tools/neo4j failed: {tail}")
        JAR.touch()
        log.info("neo4j.built", seconds=round(time.monotonic() - t0, 1))
    return JAR


@dataclass
class Neo4jServer:
    """One running server: `url`, `user` and `password` are what a client needs."""

    directory: Path
    heap: str = "1g"
    pagecache_mb: int = 512
    #: JVM options besides the heap (whose initial size is its maximum, as Neo4j advises).
    #: The throughput collector: on a 1M-transaction load it gave 14% more transactions a
    #: second than the default G1 with the same 3 GB heap (docs/neo4j.md).
    jvm_options: tuple[str, ...] = ("-XX:+UseParallelGC",)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    user: str = USER
    url: str = ""
    started_s: float = 0.0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The variables the tests read (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD)."""
        return {"NEO4J_URI": self.url, "NEO4J_USER": self.user, "NEO4J_PASSWORD": self.password}

    def start(self, *, timeout_s: float = 300.0) -> Neo4jServer:
        jar = build()
        self.directory.mkdir(parents=True, exist_ok=True)
        out = self.directory / "server.out"
        t0 = time.monotonic()
        with open(out, "wb") as sink:
            self._proc = subprocess.Popen(
                ["java", f"-Xms{self.heap}", f"-Xmx{self.heap}", *self.jvm_options, "-jar",
                 str(jar), str(self.directory / "db"), str(self.pagecache_mb)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NEO4J_PASSWORD": self.password},
                start_new_session=True,
            )  # fmt: skip
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("NEO4J_URI="):
                    self.url = line.removeprefix("NEO4J_URI=").strip()
                    self.started_s = time.monotonic() - t0
                    log.info("neo4j.started", url=self.url, seconds=round(self.started_s, 1))
                    return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        tail = " | ".join(out.read_text(errors="replace").strip().splitlines()[-5:])
        raise Neo4jServerError(f"the local Neo4j server did not start: {tail or 'no output'}")

    def stop(self, *, timeout_s: float = 60.0) -> None:
        """SIGTERM (the server shuts down and deletes its files), SIGKILL if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.info("neo4j.stopped", url=self.url)


@contextlib.contextmanager
def running(*, heap: str = "1g", pagecache_mb: int = 512) -> Iterator[Neo4jServer]:
    """A server in a temporary directory for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="fraudring-neo4j-") as tmp:
        server = Neo4jServer(Path(tmp), heap=heap, pagecache_mb=pagecache_mb).start()
        try:
            yield server
        finally:
            server.stop()


def main() -> int:
    """`python -m graph.neo4j_server`: build the jar ahead of the tests (`make test`), so a
    first build's downloads do not count against a test's timeout; says why when it cannot."""
    reason = missing()
    if reason is not None:
        print(f"neo4j server: not built, the Neo4j tests will skip: {reason}")
        return 0
    t0 = time.monotonic()
    fresh = up_to_date()
    build()
    state = "up to date" if fresh else f"built in {time.monotonic() - t0:.0f} s"
    print(f"neo4j server: {JAR.relative_to(TOOL_DIR.parents[1])} {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
