"""Child processes the platform starts (daemon, webserver, sandbox): they stop with the command that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to this child when its parent dies, even by SIGKILL (Linux only), so a
    killed `backfill-platform` command leaves no daemon or sandbox behind."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_group(proc: subprocess.Popen, grace_s: float = 8.0) -> None:
    """SIGTERM to the process group, wait until every member is gone (a daemon's code server and run workers mark
    their runs failed on the way out), then SIGKILL whatever is left after `grace_s`."""
    stop_groups([proc], grace_s)


def stop_groups(procs: Sequence[subprocess.Popen], grace_s: float = 8.0) -> None:
    """`stop_group` for several groups at once: all are signalled first and share one grace period, so stopping
    a webserver and a daemon takes as long as the slower of the two, not the sum."""
    live = []
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            live.append(proc)
        except ProcessLookupError:
            proc.poll()
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        for proc in live:
            proc.poll()  # reap the leader, so that only live members keep the group
        live = [proc for proc in live if _group_alive(proc.pid)]
        if live:
            time.sleep(0.1)
    for proc in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
