"""`dagster-daemon run` as the platform starts it: Dagster's own daemon, with a shorter backfill loop.

Dagster 1.13 fixes the backfill daemon's loop at 30 s (`controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read at each
iteration, not configurable in dagster.yaml), so a backfill waits up to 30 s to launch its run and up to 30 s more
before it is seen complete. Every daemon the platform starts (`backfill-platform dev`, `backfill`, `demo`) runs this
module instead; the interval also bounds the auto-materialize daemon's minimum interval when none is configured.

It also closes a race in Dagster's check that a backfill's runs are complete (`backfill_runs_are_complete`): a run
worker stores the run's FAILURE first and adds the `dagster/will_retry` tag in a second write, so a backfill tick in
between sees a failed run with no retry pending, marks the backfill failed, and the retry daemon then refuses to
retry a run of a finished backfill. Seen under load in CI: a backfill that should have had two retries got one.
"""

from __future__ import annotations

import logging
import time

import dagster as dg
from dagster._core.execution import asset_backfill
from dagster._core.storage.tags import BACKFILL_ID_TAG, WILL_RETRY_TAG
from dagster._daemon import controller
from dagster._daemon.cli import main

LOOP_SECONDS = 3
# How long a failed run without the retry decision still counts as undecided: the tag is written right after the
# status (or by the retry daemon's next tick), so a run untagged for longer than this will not be retried.
RETRY_DECISION_SECONDS = 60.0

_dagster_runs_are_complete = asset_backfill.backfill_runs_are_complete


def runs_are_complete(backfill_id: str, instance: dg.DagsterInstance, logger: logging.Logger) -> bool:
    """Dagster's check, plus: no run of the backfill failed so recently that its retry is still being decided."""
    if not _dagster_runs_are_complete(backfill_id, instance, logger):
        return False
    if not instance.run_retries_enabled:
        return True
    recent = time.time() - RETRY_DECISION_SECONDS
    failed = instance.get_run_records(
        dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}, statuses=[dg.DagsterRunStatus.FAILURE])
    )
    undecided = [
        r.dagster_run.run_id
        for r in failed
        if WILL_RETRY_TAG not in r.dagster_run.tags and (r.end_time or r.update_timestamp.timestamp()) > recent
    ]
    if undecided:
        logger.info(f"Runs {', '.join(undecided)} failed and their retry is not yet decided. Backfill is in progress.")
        return False
    return True


def install() -> None:
    """The shorter loop and the retry-aware completion check, for this process's daemons."""
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = LOOP_SECONDS
    asset_backfill.backfill_runs_are_complete = runs_are_complete


def run() -> None:
    install()
    main()


if __name__ == "__main__":
    run()
