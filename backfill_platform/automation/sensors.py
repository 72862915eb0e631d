"""Gap-filling sensors, one per lane: each tick requests ranged runs for the missing, failed and suspect partitions
of the history window, never for a partition already queued or running, at most a few runs at once.

Dagster has no "find the gaps and launch them as ranges" primitive (declarative automation looks at the latest
window and has no per-tick cap), so this is a plain sensor on public APIs. Turned on over an empty database it
backfills the whole window by itself, `run_days` partitions per run, `in_flight` runs at a time, at the API's rate.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import dagster as dg

from backfill_platform.automation.gaps import GAPS, Survey, plan, survey
from backfill_platform.automation.jobs import AUTOMATION_TAG, Lane
from backfill_platform.automation.settings import AutomationSettings
from backfill_platform.database import database_url
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG


def sensor_name(lane: Lane) -> str:
    return f"{lane.name}_gaps"


def run_key(seen: Survey, first: str, last: str) -> str:
    """The same gaps in the same state give the same key (a repeated tick launches nothing twice); a range whose
    earlier gap run finished without filling it gets a new key, so it is tried again."""
    keys = seen.keys[seen.keys.index(first) : seen.keys.index(last) + 1]
    return f"{first}...{last}#{max(seen.attempts.get(k, 0) for k in keys)}"


def build_sensor(lane: Lane, job: dg.UnresolvedAssetJobDefinition, cfg: AutomationSettings) -> dg.SensorDefinition:
    gaps = cfg.gaps
    window = f"{gaps.first}..{gaps.last or 'the latest partition the schedule has had its turn at'}"

    @dg.sensor(
        name=sensor_name(lane),
        job=job,
        minimum_interval_seconds=gaps.interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING if cfg.running else dg.DefaultSensorStatus.STOPPED,
        description=f"Fills the gaps of {lane.source.source.title} in {window}: missing, failed and suspect "
        f"partitions as ranged runs of at most {gaps.run_days} partitions, {gaps.per_tick} per tick, "
        f"{gaps.in_flight} in flight.",
    )
    def _gaps(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        started = time.perf_counter()
        seen = survey(context.instance, database_url(), lane, gaps, datetime.now(UTC), cfg.schedule.time_of_day)
        todo = plan(seen, gaps)
        seconds = round(time.perf_counter() - started, 3)
        cursor = json.dumps(
            {
                "partitions": len(seen.keys),
                "complete": seen.complete,
                "gaps": len(seen.gaps),
                "lacking_members": seen.short_members,
                "busy": seen.busy,
                "requested": [f"{a}...{b}" for a, b in todo.ranges],
                "waiting": todo.waiting,
                "seconds": seconds,
            }
        )
        context.log.info(f"{todo.message} ({seconds} s)")
        if not todo.ranges:
            context.update_cursor(cursor)
            return dg.SkipReason(todo.message)
        requests = [
            dg.RunRequest(
                run_key=run_key(seen, first, last),
                tags={**lane.tags, AUTOMATION_TAG: GAPS, RANGE_START_TAG: first, RANGE_END_TAG: last},
            )
            for first, last in todo.ranges
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _gaps
