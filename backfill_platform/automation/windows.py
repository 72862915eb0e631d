"""Which partitions a tick is about: final ones, a schedule's trailing window, the latest one expected by now.

Pure functions of a partitions definition, a source's declaration and a time, so schedules, sensors and the
freshness check agree, and tests can ask them about any instant (DST change days included).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from backfill_platform.automation.settings import ScheduleSettings
from backfill_platform.sources.contract import Automation

LOOK_BACK = 31  # partitions walked back at most to find the latest one expected (a long market closure)


def day_of(key: str) -> date:
    return date.fromisoformat(key[:10])


def existing_keys(partitions: dg.TimeWindowPartitionsDefinition, at: datetime) -> Sequence[str]:
    """The partition keys that exist at `at` (end_offset included)."""
    with dg.partition_loading_context(effective_dt=at):
        return partitions.get_partition_keys()


def is_final(partitions: dg.TimeWindowPartitionsDefinition, key: str, auto: Automation, at: datetime) -> bool:
    return partitions.time_window_for_partition_key(key).end + auto.final_after <= at


def latest_final_index(
    partitions: dg.TimeWindowPartitionsDefinition, keys: Sequence[str], auto: Automation, at: datetime
) -> int:
    """Index in `keys` of the latest partition whose data is final at `at` (-1: none yet)."""
    i = len(keys) - 1
    while i >= 0 and not is_final(partitions, keys[i], auto, at):
        i -= 1
    return i


def latest_complete(partitions: dg.TimeWindowPartitionsDefinition, auto: Automation, at: datetime) -> str | None:
    keys = existing_keys(partitions, at)
    i = latest_final_index(partitions, keys, auto, at)
    return keys[i] if i >= 0 else None


def schedule_range(
    partitions: dg.TimeWindowPartitionsDefinition, auto: Automation, schedule: ScheduleSettings, at: datetime
) -> tuple[str, str] | str:
    """The ranged run a schedule tick at `at` launches, or why it launches none.

    The last `window_days` final partitions that expect rows, extended back over the rowless days just before them
    (a Monday run covers the weekend), and forward by `days_ahead` partitions that already exist."""
    keys = existing_keys(partitions, at)
    last = latest_final_index(partitions, keys, auto, at)
    if last < 0:
        return f"no partition is final at {at.isoformat()} yet"
    if not auto.rows_expected(day_of(keys[last])):
        return f"{keys[last]} expects no rows; the next run covers it"
    first, counted = last, 0
    while first >= 0 and counted < schedule.window_days:
        counted += auto.rows_expected(day_of(keys[first]))
        first -= 1
    while first >= 0 and not auto.rows_expected(day_of(keys[first])):
        first -= 1
    end = min(len(keys) - 1, last + schedule.days_ahead)
    return keys[first + 1], keys[end]


def tick_after(instant: datetime, time_of_day: time, tz: ZoneInfo) -> datetime:
    """The first daily tick at `time_of_day` (wall clock in `tz`) at or after `instant`."""
    local = instant.astimezone(tz)
    tick = datetime.combine(local.date(), time_of_day, tz)
    if tick < local:
        tick = datetime.combine(local.date() + timedelta(days=1), time_of_day, tz)
    return tick


def due(
    partitions: dg.TimeWindowPartitionsDefinition, key: str, auto: Automation, time_of_day: time, grace_h: float
) -> datetime:
    """When partition `key` must be in: the first schedule tick after its data is final, plus the grace."""
    tz = ZoneInfo(partitions.timezone or "UTC")
    final = partitions.time_window_for_partition_key(key).end + auto.final_after
    return tick_after(final, time_of_day, tz) + timedelta(hours=grace_h)


def expected_latest(
    partitions: dg.TimeWindowPartitionsDefinition, auto: Automation, time_of_day: time, grace_h: float, now: datetime
) -> tuple[str, datetime] | None:
    """The latest partition that expects rows and is due by `now`, with its due time (None: none due yet)."""
    keys = existing_keys(partitions, now)
    i = latest_final_index(partitions, keys, auto, now)
    for key in reversed(keys[max(0, i - LOOK_BACK) : i + 1]):
        deadline = due(partitions, key, auto, time_of_day, grace_h)
        if deadline <= now and auto.rows_expected(day_of(key)):
            return key, deadline
    return None
