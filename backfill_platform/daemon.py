"""`dagster-daemon run` as the platform starts it: Dagster's own daemon, with a shorter backfill loop.

Dagster 1.13 fixes the backfill daemon's loop at 30 s (`controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read at each
iteration, not configurable in dagster.yaml), so a backfill waits up to 30 s to launch its run and up to 30 s more
before it is seen complete. Every daemon the platform starts (`backfill-platform dev`, `backfill`, `demo`) runs this
module instead; the interval also bounds the auto-materialize daemon's minimum interval when none is configured.
"""

from __future__ import annotations

from dagster._daemon import controller
from dagster._daemon.cli import main

LOOP_SECONDS = 3


def run() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = LOOP_SECONDS
    main()


if __name__ == "__main__":
    run()
