"""Daily schedules, one per lane: each tick is one ranged run over the trailing days whose data may still change.

Dagster's `build_schedule_from_partitioned_job` targets only the latest single partition; this computes the trailing
keys as of the tick (in the source's time zone, DST handled by `execution_timezone`) and returns the range tags, so
a single-run asset runs once over the window.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from backfill_platform.automation.jobs import AUTOMATION_TAG, Lane
from backfill_platform.automation.settings import AutomationSettings
from backfill_platform.automation.windows import schedule_range
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG


def schedule_name(lane: Lane) -> str:
    return f"{lane.name}_daily"


def build_schedule(lane: Lane, job: dg.UnresolvedAssetJobDefinition, cfg: AutomationSettings) -> dg.ScheduleDefinition:
    auto, schedule = lane.source.source.automation, cfg.schedule
    at = schedule.time_of_day
    ahead = f" and {schedule.days_ahead} days ahead" if schedule.days_ahead else ""

    @dg.schedule(
        name=schedule_name(lane),
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone=lane.partitions.timezone or "UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING if cfg.running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day at {at:%H:%M} ({lane.partitions.timezone}): one run over the last "
        f"{schedule.window_days} final days{ahead} of {lane.source.source.title}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        when = context.scheduled_execution_time or datetime.now(UTC)  # None: evaluated by hand, outside a tick
        window = schedule_range(lane.partitions, auto, schedule, when)
        if isinstance(window, str):
            return dg.SkipReason(window)
        first, last = window
        return dg.RunRequest(
            run_key=f"{first}...{last}",
            tags={**lane.tags, AUTOMATION_TAG: "schedule", RANGE_START_TAG: first, RANGE_END_TAG: last},
        )

    return _daily
