"""Wall-clock samples of worker processes (py-spy), summarised by what the threads were doing.

A drain is latency-bound when its threads spend their time waiting for replies rather than
computing; py-spy's `--idle` samples count both, so shares of samples say where a batch's
wall time goes. py-spy is an optional tool (`pip install py-spy`), not a dependency.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from bench import BenchError

RATE_HZ = 50
#: Leaf frames (the function's own name) of a thread blocked on something: a reply from Redis
#: or the graph server (redis-py, which the FalkorDB client uses too, with or without hiredis),
#: or a Redis lock held by another drain (redis-py's `Lock.acquire` polls with sleeps).
_WAITING = {
    "waiting_reply": frozenset(
        {
            "read_from_socket",
            "_read_from_socket",
            "read_response",
            "readline",
            "can_read",
            "_socket_can_read",
            "recv",
        }
    ),
    "waiting_lock": frozenset({"Lock.acquire"}),
}


def py_spy() -> str:
    path = shutil.which("py-spy")
    if path is None:
        raise BenchError("profiling needs py-spy on PATH (pip install py-spy)")
    return path


@contextlib.contextmanager
def sampled(pids: list[int], *, seconds: float, out: Path) -> Iterator[list[Path]]:
    """Sample each process for `seconds` while the block runs; yields the output files."""
    spy = py_spy()
    out.parent.mkdir(parents=True, exist_ok=True)
    files = [out.with_name(f"{out.name}-{i}.txt") for i in range(len(pids))]

    def command(pid: int, file: Path) -> list[str]:
        return [
            *(spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds)))),
            *("--rate", str(RATE_HZ), "--format", "raw", "--function", "--idle"),
            *("--nonblocking", "--output", str(file)),
        ]

    procs = [
        subprocess.Popen(command(pid, f), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid, f in zip(pids, files, strict=True)
    ]
    try:
        yield files
    finally:
        for p in procs:
            try:
                p.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                p.kill()


def shares(
    files: list[Path], marks: Mapping[str, tuple[str, ...]], *, within: str
) -> dict[str, float]:
    """Share of the samples whose stack holds `within` (a function name) that also hold each
    mark's functions; `waiting_reply` and `waiting_lock` (the leaf is a socket read, or a
    Redis lock's wait); and `<within>_threads`, the share of all sampled thread time spent
    inside `within` at all."""
    total = inside = 0
    hits = dict.fromkeys(marks, 0)
    waits = dict.fromkeys(_WAITING, 0)
    for f in files:
        if not f.exists():
            continue
        for line in f.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            names = [frame.split(" (", 1)[0] for frame in stack.split(";")]
            if not any(name.endswith(within) for name in names):
                continue
            inside += n
            leaf = names[-1] if names else ""
            for wait, leaves in _WAITING.items():
                if leaf in leaves or leaf.rsplit(".", 1)[-1] in leaves:
                    waits[wait] += n
            for mark, funcs in marks.items():
                if any(name.endswith(fn) for name in names for fn in funcs):
                    hits[mark] += n
    out = {f"{within}_threads": inside / total if total else float("nan")}
    out.update({m: h / inside if inside else float("nan") for m, h in hits.items()})
    out.update({w: h / inside if inside else float("nan") for w, h in waits.items()})
    return out
