"""Freshness by partition: late until the partition due is committed; an old day's backfill does not hide it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from backfill_platform.automation import freshness, settings
from backfill_platform.automation.jobs import lanes
from backfill_platform.sources import load, named
from backfill_platform_tests.sources.helpers import drop_schemas
from backfill_platform_tests.sources.test_blaze import ALL, resources

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=ZoneInfo("America/Los_Angeles"))  # 2024-03-05 was due at 09:00


def evaluate(check: dg.AssetChecksDefinition, sandbox, db_url: str) -> dg.AssetCheckEvaluation:
    """The check alone, as the freshness sensor's run executes it (no fetch, no API call)."""
    result = dg.materialize(
        [*ALL, check], selection=dg.AssetSelection.checks(check), resources=resources(sandbox, db_url)
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_the_partition_due_decides_freshness(sandbox, db_url: str) -> None:
    drop_schemas(db_url, "blaze")
    loaded = named("blaze", load({}))
    [lane] = lanes(loaded)
    cfg = settings.read(loaded, {})
    check = freshness.build_check(lane, cfg, clock=lambda: NOW)
    sensor = freshness.build_sensor(lane, lane.job(), cfg, clock=lambda: NOW)

    late = evaluate(check, sandbox, db_url)
    assert not late.passed and late.severity == dg.AssetCheckSeverity.ERROR  # red in the UI
    assert late.metadata["partition_due"].value == "2024-03-05"
    request = sensor(dg.build_sensor_context())
    assert isinstance(request, dg.RunRequest) and request.run_key == "2024-03-05:late"
    assert request.asset_check_keys == [freshness.check_key(lane)] and request.asset_selection == []

    assert dg.materialize(ALL, resources=resources(sandbox, db_url), partition_key="2024-02-01").success
    assert not evaluate(check, sandbox, db_url).passed  # a backfill of an old day does not make the source fresh

    assert dg.materialize(ALL, resources=resources(sandbox, db_url), partition_key="2024-03-05").success
    fresh = evaluate(check, sandbox, db_url)
    assert fresh.passed and fresh.metadata["latest_committed"].value == "2024-03-05"
    request = sensor(dg.build_sensor_context())
    assert isinstance(request, dg.RunRequest) and request.run_key == "2024-03-05:committed"
