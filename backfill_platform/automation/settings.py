"""Automation settings per source, read when the definitions load: BACKFILL_<SOURCE>_SCHEDULE_* and _GAPS_*.

Defaults come from each source's declaration (`Source.automation`); a bad value is one line naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import TypeVar

from backfill_platform import config
from backfill_platform.sources.contract import LoadedSource

T = TypeVar("T")
RUNNING = "BACKFILL_AUTOMATION_RUNNING"
HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def parse_time(text: str) -> time:
    if not HH_MM.fullmatch(text):
        raise ValueError(text)
    return time.fromisoformat(text)


def parse_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def parse_hours(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise ValueError(text)
    return value


def parse_optional_date(text: str) -> date | None:
    return None if text in ("", "-") else config.parse_date(text)


@dataclass(frozen=True)
class ScheduleSettings:
    window_days: int  # trailing partitions re-run by each tick
    time_of_day: time  # in the source's time zone
    days_ahead: int  # partitions after the latest final one (where the partitions exist)


@dataclass(frozen=True)
class GapSettings:
    first: date  # the history window the sensor keeps complete
    last: date | None  # None: the latest complete partition
    run_days: int  # at most this many partitions per requested run
    per_tick: int  # runs requested per tick
    in_flight: int  # this sensor's runs queued or running at once
    interval_s: int  # minimum seconds between ticks


@dataclass(frozen=True)
class AutomationSettings:
    schedule: ScheduleSettings
    gaps: GapSettings
    freshness_hours: float  # after the schedule's tick for a partition, it is late
    running: bool  # schedules and sensors start running (else stopped, the Dagster default)


def read(source: LoadedSource, environ: Mapping[str, str] | None = None) -> AutomationSettings:
    """The source's automation settings; defaults from its declaration and its configured first day."""
    auto = source.source.automation

    def get(name: str, default: object, parse: Callable[[str], T], expect: str) -> T:
        return config.read(config.source_var(source.name, name), str(default), parse, expect, environ)

    whole = "a whole number of days of at least 1"
    schedule = ScheduleSettings(
        window_days=get("schedule_days", auto.window_days, config.parse_positive_int, whole),
        time_of_day=get("schedule_time", auto.time_of_day, parse_time, "a time of day; write HH:MM, e.g. 06:00"),
        days_ahead=get("schedule_ahead", auto.days_ahead, parse_count, "a whole number of days (0 or more)"),
    )
    start = source.config.start
    gaps = GapSettings(
        first=max(start, get("gaps_from", start.isoformat(), config.parse_date, "a date; write YYYY-MM-DD")),
        last=get("gaps_to", "", parse_optional_date, "a date; write YYYY-MM-DD, or leave it empty"),
        run_days=get("gaps_run_days", 31, config.parse_positive_int, whole),
        per_tick=get("gaps_per_tick", 2, config.parse_positive_int, "a whole number of runs of at least 1"),
        in_flight=get("gaps_in_flight", 2, config.parse_positive_int, "a whole number of runs of at least 1"),
        interval_s=get("gaps_interval", 300, config.parse_positive_int, "a whole number of seconds of at least 1"),
    )
    hours = get("freshness_hours", 3, parse_hours, "a number of hours (0 or more), e.g. 3 or 1.5")
    running = config.read(RUNNING, "false", config.parse_bool, "true or false", environ)
    return AutomationSettings(schedule, gaps, hours, running)
