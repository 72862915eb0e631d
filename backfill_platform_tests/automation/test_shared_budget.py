"""A scheduled run and a gap-filling run of one API at once: their calls together stay inside its rate budget,
as the sandbox counts them on arrival (the budget lives in PostgreSQL, shared by every process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest

from backfill_platform.automation import schedules, sensors, settings
from backfill_platform.automation.jobs import lanes
from backfill_platform.sources import load, named
from backfill_platform_tests.conftest import REPO_ROOT
from backfill_platform_tests.sources.helpers import drop_schemas

LIMIT, PERIOD_S = 10, 1.0  # the budget under test

RUN = """
import sys, dagster as dg
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform_tests.sources.test_blaze import ALL, CHECKS
cfg = SandboxConfig()
api = BlazeApi(base_url={origin!r} + "/blaze", rate={rate!r}, partner_key=cfg.blaze_partner_key,
               api_key=cfg.blaze_api_key)
with dg.DagsterInstance.from_config({home!r}) as instance:
    result = dg.materialize([*ALL, *CHECKS], resources={{"blaze": api, "io_manager": PostgresIOManager()}},
                            instance=instance, tags={tags!r}, raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


@pytest.mark.slow
def test_a_schedule_run_and_a_sensor_run_at_once_stay_within_the_budget(
    sandbox, db_url: str, dagster_home: Path
) -> None:
    drop_schemas(db_url, "blaze")
    environ = {"BACKFILL_BLAZE_GAPS_FROM": "2024-05-01", "BACKFILL_BLAZE_GAPS_TO": "2024-05-10"}
    loaded = named("blaze", load(environ))
    [lane] = lanes(loaded)
    cfg = settings.read(loaded, environ)
    tick = datetime(2024, 6, 12, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    scheduled = schedules.build_schedule(lane, lane.job(), cfg)(
        dg.build_schedule_context(scheduled_execution_time=tick)
    )
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        gaps = sensors.build_sensor(lane, lane.job(), cfg)(dg.build_sensor_context(instance=instance))
    assert isinstance(scheduled, dg.RunRequest) and isinstance(gaps, dg.SensorResult)
    [gap_fill] = gaps.run_requests or []
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(RUN).format(
                    origin=sandbox.origin, rate=f"{LIMIT}/{PERIOD_S:g}s", home=str(dagster_home), tags=dict(r.tags)
                ),
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "BACKFILL_DATABASE_URL": db_url},
        )
        for r in (scheduled, gap_fill)
    ]
    assert [p.wait(180) for p in procs] == [0, 0]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"backfill_platform/api": "blaze"}))
        spans = [(s.start_time or 0, s.end_time or 0) for s in (instance.get_run_stats(r.run_id) for r in runs)]
    assert sorted(r.tags["backfill_platform/automation"] for r in runs) == ["gaps", "schedule"]
    assert max(a for a, _ in spans) < min(b for _, b in spans)  # the two runs overlapped in time
    answer = httpx.get(f"{sandbox.origin}/_sandbox/arrivals/blaze", params={"window": PERIOD_S}).json()
    calls = len(answer["arrivals"])
    print(f"\n{calls} calls by a schedule run and a gap run at once: busiest {PERIOD_S:g} s window {answer['busiest']}")
    assert calls >= 4 * LIMIT  # long enough for the budget to bind
    assert answer["busiest"] <= LIMIT
