"""Child processes of the CLI: started so that they never outlive it, stopped with their
process group, restarted when they crash (but not forever)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any

from fraudring.logs import get_logger

log = get_logger(__name__)


def die_with_parent() -> None:
    """`preexec_fn` of a child that must not outlive its parent, even a parent killed with -9
    (Linux: PR_SET_PDEATHSIG; elsewhere the parent's own shutdown is all there is)."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_group(proc: subprocess.Popen[Any], *, grace_s: float) -> None:
    """SIGTERM a child started in its own session, with its whole process group; SIGKILL what
    is left after `grace_s`."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


#: A child that crashes this soon after its start counts towards giving up on restarts.
EARLY_CRASH_S = 10.0
#: Early crashes in a row after which `run_child` stops restarting (a broken configuration).
MAX_EARLY_CRASHES = 5


def run_child(
    cmd: list[str], *, grace_s: float = 60.0, restart: bool = False, backoff_s: float = 1.0
) -> int:
    """Run a child in the foreground until it exits. SIGTERM or Ctrl-C to this process is passed
    on as SIGTERM (a warm shutdown), and this process waits for the child (killing it after
    `grace_s`) before unwinding: a child never outlives the command that started it.

    With `restart`, a child that exits with an error is started again: a Celery worker dies
    with "Unrecoverable error" when its broker drops while it restores unacknowledged tasks
    (kombu), and a stopped worker would leave the stream unread. Repeated crashes right after
    start (a configuration no restart mends) end it with the child's exit code."""
    early = 0
    while True:
        started = time.monotonic()
        code = _run_once(cmd, grace_s=grace_s)
        if not restart or code == 0:
            return code
        early = early + 1 if time.monotonic() - started < EARLY_CRASH_S else 0
        if early >= MAX_EARLY_CRASHES:
            log.error("child.gave_up", cmd=cmd[:6], exit_code=code, crashes=early)
            return code
        log.warning("child.restarted", cmd=cmd[:6], exit_code=code)
        time.sleep(backoff_s)


def _run_once(cmd: list[str], *, grace_s: float) -> int:
    proc = subprocess.Popen(cmd, preexec_fn=die_with_parent)
    try:
        return proc.wait()
    except BaseException:  # KeyboardInterrupt, or SystemExit from the CLI's SIGTERM handler
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("child.killed", pid=proc.pid, after_s=grace_s)
                proc.kill()
                proc.wait(timeout=10)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        raise
