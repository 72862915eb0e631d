"""Following backfills to the end: one live progress line per source on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

import dagster as dg

from backfill_platform.backfills import Progress, progress


@dataclass
class Follow:
    """How to print progress: live lines on a terminal, a plain line per source every `every_s` otherwise."""

    tty: bool
    every_s: float = 10.0
    out: TextIO = sys.stdout


@dataclass(frozen=True)
class Followed:
    """One backfill being followed: what its progress line is called, and each asset's partitions it covers."""

    backfill_id: str
    name: str
    own: Mapping[str, Sequence[str]]


def watch_all(
    instance: dg.DagsterInstance,
    dsn: str,
    followed: Sequence[Followed],
    follow: Follow,
    keep_serving: Callable[[], None],
) -> list[Progress]:
    """Follow every backfill until all have finished; `keep_serving` runs each round (it restarts a daemon that went
    away). A finished backfill's line keeps the time it took."""
    started = time.monotonic()
    states: dict[str, Progress] = {}
    took: dict[str, float] = {}
    last_print = -follow.every_s
    drawn = 0
    while True:
        keep_serving()
        now = time.monotonic() - started
        for f in followed:
            if f.backfill_id not in took:
                state = progress(instance, dsn, f.backfill_id, f.own)
                states[f.backfill_id] = state
                if state.finished:
                    took[f.backfill_id] = state.seconds = now
        done = len(took) == len(followed)
        lines = [f"{f.name}: {states[f.backfill_id].line(took.get(f.backfill_id, now))}" for f in followed]
        if follow.tty:
            up = f"\033[{drawn}F" if drawn else ""
            print(up + "".join(f"{line}\033[K\n" for line in lines), end="", file=follow.out, flush=True)
            drawn = len(lines)
        else:  # a line per unfinished backfill every `every_s`, and each one's last line once, when it finishes
            periodic = now - last_print >= follow.every_s
            for f, line in zip(followed, lines, strict=True):
                if (periodic and f.backfill_id not in took) or took.get(f.backfill_id) == now:
                    print(line, file=follow.out, flush=True)
            last_print = now if periodic else last_print
        if done:
            return [states[f.backfill_id] for f in followed]
        time.sleep(0.5 if follow.tty else 1.0)


def detached(backfill_id: str, follow: Follow) -> None:
    print(
        f"\ndetached from backfill {backfill_id}; it goes on while a daemon runs "
        f"(`backfill-platform dev`). Re-attach: backfill-platform backfill --follow {backfill_id}; "
        f"cancel: backfill-platform backfill --cancel {backfill_id}",
        file=follow.out,
        flush=True,
    )
