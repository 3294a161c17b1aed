"""The local spool: decisions made while Redis was down, kept until they reach the stream.

Append-only JSON lines, fsync'd per write, shared by every worker process of the API (appends of
one line under a shared lock). Replay takes the lock exclusively, renames the file aside (new
decisions go to a fresh file), releases the lock, replays every line through an idempotent Lua
script keyed by txn_id, then deletes the renamed file. A crash mid-replay leaves the renamed file,
which the next replay picks up again; the script makes the second pass a no-op per line.

When the data directory cannot take a line (a full or read-only disk), the line goes to a
fallback directory (`FRAUDRING_SPOOL_FALLBACK_DIR`, by default one in /dev/shm, memory that
outlives the process), the spool says so (`/readyz` is not ready), and both are replayed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from fraudring.logs import get_logger

log = get_logger(__name__)

SPOOL_NAME = "decisions.jsonl"


class SpoolUnwritable(OSError):
    """Neither the spool nor its fallback could take a line."""


def default_fallback(directory: Path) -> Path:
    """A fallback apart from the data directory's disk, one per spool directory."""
    shm = Path("/dev/shm")  # noqa: S108 - made 0700 and checked to be ours before each use
    base = shm if shm.is_dir() else Path(tempfile.gettempdir())
    tag = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    return base / f"fraudring-spool-{os.getuid()}-{tag}"


class Spool:
    def __init__(
        self, directory: Path, *, fallback: Path | None = None, with_fallback: bool = True
    ) -> None:
        self.directory = directory
        self.path = directory / SPOOL_NAME
        self._lock_path = directory / ".lock"
        self.fallback = (
            Spool(fallback or default_fallback(directory), with_fallback=False)
            if with_fallback
            else None
        )
        #: a fallback in a shared directory: private, and refused if someone else made it
        self._private = not with_fallback
        #: why the last line went to the fallback (None once the primary took one again)
        self.primary_error: str | None = None

    def append(self, entry: dict[str, Any]) -> Path:
        """Durably append one entry (fsync before returning), to the fallback if need be;
        raises SpoolUnwritable when neither takes it. Returns the file written."""
        line = orjson.dumps(entry) + b"\n"
        try:
            self._append(line)
            self.primary_error = None
            return self.path
        except OSError as exc:
            self.primary_error = f"{self.directory}: {exc.strerror or exc}"
            log.error("spool.primary_failed", error=self.primary_error)
            if self.fallback is None:
                raise SpoolUnwritable(self.primary_error) from exc
        try:
            self.fallback._append(line)
        except OSError as exc:
            raise SpoolUnwritable(
                f"{self.primary_error}; fallback {self.fallback.directory}: {exc}"
            ) from exc
        return self.fallback.path

    def writable(self) -> tuple[bool, str]:
        """Whether the primary directory takes a synced write now (the /readyz probe)."""
        probe = self.directory / f".probe-{os.getpid()}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"x" * 512)
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            where = f"fallback {self.fallback.directory}" if self.fallback else "no fallback"
            reason = exc.strerror or str(exc)
            return False, f"{self.directory} not writable ({reason}); spooling to {where}"
        if self.primary_error is not None:
            return False, f"last spool write failed: {self.primary_error}"
        return True, f"{self.directory} writable"

    def parts(self) -> list[Spool]:
        return [self] + ([self.fallback] if self.fallback is not None else [])

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        self.directory.mkdir(mode=0o700 if self._private else 0o777, parents=True, exist_ok=True)
        if self._private and self.directory.stat().st_uid != os.getuid():
            raise PermissionError(f"{self.directory} belongs to another user")
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _append(self, line: bytes) -> None:
        with self._locked(fcntl.LOCK_SH):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending_files(self) -> list[Path]:
        try:
            return sorted(self.directory.glob(f"{SPOOL_NAME}.replaying-*"))
        except OSError:
            return []

    def has_entries(self) -> bool:
        return any(part._has_entries() for part in self.parts())

    def _has_entries(self) -> bool:
        try:
            if self.path.stat().st_size > 0:
                return True
        except OSError:  # missing, or a path that cannot be a directory
            pass
        return bool(self.pending_files())

    def _take(self) -> list[Path]:
        with self._locked(fcntl.LOCK_EX):
            if self.path.exists() and self.path.stat().st_size > 0:
                aside = self.path.with_name(
                    f"{SPOOL_NAME}.replaying-{time.time_ns()}-{os.getpid()}"
                )
                os.replace(self.path, aside)
        return self.pending_files()

    async def replay(self, send: Callable[[dict[str, Any]], Awaitable[bool]]) -> tuple[int, int]:
        """Send every spooled entry (the fallback's too); returns (recorded now, already
        recorded). `send` raises on a Redis error: the file stays for the next attempt."""
        recorded = skipped = 0
        for part in self.parts():
            r, k = await part._replay_guarded(send)
            recorded, skipped = recorded + r, skipped + k
        if recorded or skipped:
            log.info("spool.replayed", recorded=recorded, already=skipped)
        return recorded, skipped

    async def _replay_guarded(
        self, send: Callable[[dict[str, Any]], Awaitable[bool]]
    ) -> tuple[int, int]:
        if not self._has_entries():
            return 0, 0
        guard = os.open(self.directory / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(guard)
            return 0, 0  # another process is replaying
        try:
            return await self._replay_files(send)
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)
            os.close(guard)

    async def _replay_files(
        self, send: Callable[[dict[str, Any]], Awaitable[bool]]
    ) -> tuple[int, int]:
        recorded = skipped = 0
        for path in self._take():
            for raw in path.read_bytes().splitlines():
                if not raw.strip():
                    continue
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    # A torn last line from a crash mid-write: keep it aside, never drop silently.
                    with (self.directory / "rejected.jsonl").open("ab") as f:
                        f.write(raw + b"\n")
                    log.error("spool.bad_line", file=path.name)
                    continue
                if await send(entry):
                    recorded += 1
                else:
                    skipped += 1
            path.unlink()
        return recorded, skipped
