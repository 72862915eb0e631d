"""End to end: the Dagster daemon runs the gap sensor (turned on with `dagster sensor start`), which fills a day
missing from the sandbox's data with one ranged run through the run queue."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from backfill_platform import settings
from backfill_platform.automation.jobs import AUTOMATION_TAG
from backfill_platform.backfills import daemon
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform_tests.automation.test_sensors import run
from backfill_platform_tests.sources.helpers import daemon_environment, drop_schemas, until

GAP = "2024-03-03"


def stored_ids(db_url: str, day: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM blaze.transactions WHERE business_date = %s", (day,))}


@pytest.mark.e2e
@pytest.mark.slow
def test_the_daemon_runs_the_gap_sensor_and_the_gap_is_filled(sandbox, db_url: str, tmp_path: Path) -> None:
    drop_schemas(db_url, "blaze")
    env = {
        **daemon_environment(tmp_path, db_url, sandbox),
        "BACKFILL_BLAZE_GAPS_FROM": "2024-03-01",
        "BACKFILL_BLAZE_GAPS_TO": "2024-03-05",
        "BACKFILL_BLAZE_GAPS_INTERVAL": "5",
    }
    home = env["DAGSTER_HOME"]
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = home
    workspace = str(settings.project_root() / "workspace.yaml")
    try:
        # as a user turns it on (it starts stopped), while the days around the gap are loaded
        starting = subprocess.Popen(
            [sys.executable, "-m", "dagster", "sensor", "start", "blaze_gaps", "-w", workspace],
            env=env,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with dg.DagsterInstance.get() as instance:
            assert run(instance, sandbox, db_url, "2024-03-01", "2024-03-02").success
            assert run(instance, sandbox, db_url, "2024-03-04", "2024-03-05").success
            assert stored_ids(db_url, GAP) == set()
            out, _ = starting.communicate(timeout=120)
            assert starting.returncode == 0, out
            sandbox.reset()
            with daemon(env):
                gap_runs = lambda: instance.get_runs(dg.RunsFilter(tags={AUTOMATION_TAG: "gaps"}))  # noqa: E731
                until(lambda: any(r.status == dg.DagsterRunStatus.SUCCESS for r in gap_runs()), 90, "the gap run")
                [filled] = gap_runs()
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    assert filled.tags[settings.RANGE_START_TAG] == filled.tags[settings.RANGE_END_TAG] == GAP
    assert filled.tags[settings.API_TAG] == "blaze"
    expected = {t["id"] for t in truth.transactions_for_day(SandboxConfig().seed, date.fromisoformat(GAP))}
    assert stored_ids(db_url, GAP) == expected
    # the fewest calls: the one day's pages, nothing for the days already there, nothing for the checks
    assert sandbox.stats()["routes"]["blaze transactions"]["requests"] == -(-len(expected) // 100)
