"""Dagster's instance from the project's dagster.yaml keeps runs and events in the platform's Postgres."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
from dagster._core.run_coordinator import QueuedRunCoordinator

from backfill_platform_tests.conftest import REPO_ROOT


@dg.asset
def answer() -> int:
    return 42


def test_instance_from_dagster_yaml_stores_runs_in_postgres(dagster_home: Path, db_url: str) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        # dead runs are found (their slots freed, their retries started), and no onboarding pop-up in the UI
        assert instance.run_monitoring_enabled and instance.run_monitoring_start_timeout_seconds == 180
        assert instance.nux_enabled is False
        result = dg.materialize([answer], instance=instance)
        assert result.success
        run_id = result.run_id
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        materialized = conn.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchone()
    assert status == ("SUCCESS",)
    assert materialized == (1,)


def test_definitions_validate() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_definitions_object_loads() -> None:
    from backfill_platform.definitions import defs
    from backfill_platform.sources import load

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {k.to_user_string() for s in load() for k in s.asset_keys}
    assert {
        "blaze/transactions",
        "canton/events",
        "racing/horses",
        "alpaca/bars_1day",
        "stacks/wallet_transactions",
    } <= keys
