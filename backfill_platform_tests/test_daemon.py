"""The platform's daemon: a backfill is not complete while a failed run's retry is still being decided."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.execution import asset_backfill
from dagster._core.storage.tags import BACKFILL_ID_TAG, WILL_RETRY_TAG
from dagster._core.utils import make_new_run_id

from backfill_platform import daemon

LOG = logging.getLogger("test")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 2}}) as instance:
        yield instance


def _failed_run(instance: dg.DagsterInstance, backfill_id: str) -> str:
    """A run of the backfill as the run worker leaves it between its two writes: FAILURE stored, no retry tag yet."""
    run_id = make_new_run_id()
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            run_id=run_id,
            status=dg.DagsterRunStatus.FAILURE,
            tags={BACKFILL_ID_TAG: backfill_id},
        )
    )
    return run_id


def test_a_failed_run_without_its_retry_decision_keeps_the_backfill_in_progress(instance) -> None:
    run_id = _failed_run(instance, "bf1")
    assert _dagster_says_complete(instance, "bf1")  # the race: Dagster's own check calls it complete
    assert not daemon.runs_are_complete("bf1", instance, LOG)
    instance.add_run_tags(run_id, {WILL_RETRY_TAG: "true"})  # decided: a retry follows
    assert not daemon.runs_are_complete("bf1", instance, LOG)
    instance.add_run_tags(run_id, {WILL_RETRY_TAG: "false"})  # decided: retries are used up
    assert daemon.runs_are_complete("bf1", instance, LOG)


def test_an_undecided_run_stops_holding_the_backfill_after_the_decision_window(instance, monkeypatch) -> None:
    _failed_run(instance, "bf2")
    monkeypatch.setattr(daemon, "RETRY_DECISION_SECONDS", -1.0)
    assert daemon.runs_are_complete("bf2", instance, LOG)


def test_without_run_retries_a_failed_run_completes_the_backfill() -> None:
    with dg.instance_for_test() as instance:
        _failed_run(instance, "bf3")
        assert daemon.runs_are_complete("bf3", instance, LOG)


def test_install_puts_the_check_where_the_backfill_daemon_calls_it(monkeypatch) -> None:
    monkeypatch.setattr(asset_backfill, "backfill_runs_are_complete", asset_backfill.backfill_runs_are_complete)
    monkeypatch.setattr(
        daemon.controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS
    )
    daemon.install()
    assert asset_backfill.backfill_runs_are_complete is daemon.runs_are_complete
    assert daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS == daemon.LOOP_SECONDS


def _dagster_says_complete(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    return daemon._dagster_runs_are_complete(backfill_id, instance, LOG)
