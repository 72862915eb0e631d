"""Keeping current: per source (per lane), a daily schedule, a gap-filling sensor and a freshness check with its
sensor, all built from the source's declaration and its BACKFILL_<SOURCE>_SCHEDULE_* / _GAPS_* settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from backfill_platform.automation import freshness, schedules, sensors, settings
from backfill_platform.automation.jobs import lanes
from backfill_platform.sources.contract import LoadedSource


def definitions(loaded: Sequence[LoadedSource], environ: Mapping[str, str] | None = None) -> dg.Definitions:
    jobs, scheduled, sensed, checks = [], [], [], []
    for source in loaded:
        cfg = settings.read(source, environ)
        for lane in lanes(source):
            job = lane.job()
            jobs.append(job)
            scheduled.append(schedules.build_schedule(lane, job, cfg))
            sensed.extend([sensors.build_sensor(lane, job, cfg), freshness.build_sensor(lane, job, cfg)])
            checks.append(freshness.build_check(lane, cfg))
    return dg.Definitions(jobs=jobs, schedules=scheduled, sensors=sensed, asset_checks=checks)
