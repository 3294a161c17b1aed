"""The local spool: decisions made while Redis was down, kept until they reach the stream.

Append-only JSON lines, fsync'd per write, shared by every worker process of the API (appends of
one line under a shared lock). Replay takes the lock exclusively, renames the file aside (new
decisions go to a fresh file), releases the lock, replays every line through an idempotent Lua
script keyed by txn_id, then deletes the renamed file. A crash mid-replay leaves the renamed file,
which the next replay picks up again; the script makes the second pass a no-op per line.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from fraudring.logs import get_logger

log = get_logger(__name__)

SPOOL_NAME = "decisions.jsonl"


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_NAME
        self._lock_path = directory / ".lock"

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, entry: dict[str, Any]) -> None:
        """Durably append one entry (fsync before returning)."""
        line = orjson.dumps(entry) + b"\n"
        with self._locked(fcntl.LOCK_SH):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending_files(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob(f"{SPOOL_NAME}.replaying-*"))

    def has_entries(self) -> bool:
        try:
            if self.path.stat().st_size > 0:
                return True
        except FileNotFoundError:
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
        """Send every spooled entry; returns (recorded now, already recorded).

        `send` raises on a Redis error: the file stays for the next attempt.
        """
        recorded = skipped = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        guard = os.open(self.directory / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(guard)
            return 0, 0  # another process is replaying
        try:
            recorded, skipped = await self._replay_files(send)
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)
            os.close(guard)
        if recorded or skipped:
            log.info("spool.replayed", recorded=recorded, already=skipped)
        return recorded, skipped

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
