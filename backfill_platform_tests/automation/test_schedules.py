"""Daily schedules: the ranged run a tick requests, in the source's time zone, DST change days included."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from backfill_platform import automation
from backfill_platform.automation import schedules, settings
from backfill_platform.automation.jobs import AUTOMATION_TAG, lanes
from backfill_platform.automation.windows import expected_latest, schedule_range
from backfill_platform.errors import ConfigurationError
from backfill_platform.settings import API_TAG, RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources import blaze, load, named
from backfill_platform.sources.contract import Automation, LoadedSource

LA = ZoneInfo("America/Los_Angeles")


def tick(source: str, at: datetime, environ: dict[str, str] | None = None) -> dg.RunRequest | dg.SkipReason:
    return tick_with(named(source, load(environ or {})), at, environ or {})


def tick_with(loaded: LoadedSource, at: datetime, environ: dict[str, str]) -> dg.RunRequest | dg.SkipReason:
    """What the schedule of `loaded` returns for a tick scheduled at `at`."""
    [lane] = lanes(loaded)
    schedule = schedules.build_schedule(lane, lane.job(), settings.read(loaded, environ))
    result = schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert isinstance(result, dg.RunRequest | dg.SkipReason)
    return result


def span(request: dg.RunRequest | dg.SkipReason) -> tuple[str, str]:
    assert isinstance(request, dg.RunRequest), request
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2024, 6, 12, 6, 0, tzinfo=LA), ("2024-06-09", "2024-06-11")),
        # spring forward: 2024-03-10 has 23 hours in Los Angeles; fall back: 2024-11-03 has 25
        (datetime(2024, 3, 10, 6, 0, tzinfo=LA), ("2024-03-07", "2024-03-09")),
        (datetime(2024, 3, 11, 6, 0, tzinfo=LA), ("2024-03-08", "2024-03-10")),
        (datetime(2024, 11, 3, 6, 0, tzinfo=LA), ("2024-10-31", "2024-11-02")),
        (datetime(2024, 11, 4, 6, 0, tzinfo=LA), ("2024-11-01", "2024-11-03")),
        # the daemon's tick arrives as any aware datetime: 06:00 in LA on the spring day is 13:00 UTC
        (datetime(2024, 3, 10, 13, 0, tzinfo=UTC), ("2024-03-07", "2024-03-09")),
    ],
)
def test_blaze_tick_is_one_ranged_run_over_the_last_three_final_days(at: datetime, expected: tuple) -> None:
    request = tick("blaze", at)
    assert span(request) == expected
    assert isinstance(request, dg.RunRequest)
    assert request.tags[API_TAG] == "blaze" and request.tags[AUTOMATION_TAG] == "schedule"
    assert request.run_key == f"{expected[0]}...{expected[1]}"


def test_schedule_runs_daily_at_the_source_time_in_its_time_zone() -> None:
    defs = automation.definitions(load({}))
    by_name = {s.name: s for s in defs.schedules or []}
    assert isinstance(by_name["blaze_daily"], dg.ScheduleDefinition)
    assert by_name["blaze_daily"].cron_schedule == "0 6 * * *"
    assert by_name["blaze_daily"].execution_timezone == "America/Los_Angeles"
    assert by_name["blaze_daily"].default_status == dg.DefaultScheduleStatus.STOPPED
    assert by_name["canton_daily"].execution_timezone == "UTC"
    running = automation.definitions(load({}), {"BACKFILL_AUTOMATION_RUNNING": "true"})
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in running.schedules or [])
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in running.sensors or [])
    assert all(s.default_status == dg.DefaultSensorStatus.STOPPED for s in defs.sensors or [])


def test_canton_tick_reruns_yesterday_utc() -> None:
    assert span(tick("canton", datetime(2024, 12, 10, 2, 0, tzinfo=UTC))) == ("2024-12-09", "2024-12-09")


def test_window_and_time_are_settings() -> None:
    env = {"BACKFILL_BLAZE_SCHEDULE_DAYS": "5", "BACKFILL_BLAZE_SCHEDULE_TIME": "02:30"}
    assert span(tick("blaze", datetime(2024, 6, 12, 2, 30, tzinfo=LA), env)) == ("2024-06-07", "2024-06-11")
    defs = automation.definitions(load(env), env)
    blaze_daily = next(s for s in defs.schedules or [] if s.name == "blaze_daily")
    assert isinstance(blaze_daily, dg.ScheduleDefinition) and blaze_daily.cron_schedule == "30 2 * * *"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("BACKFILL_BLAZE_SCHEDULE_DAYS", "0", "BACKFILL_BLAZE_SCHEDULE_DAYS='0' is not a whole number of days"),
        (
            "BACKFILL_CANTON_SCHEDULE_TIME",
            "6am",
            "BACKFILL_CANTON_SCHEDULE_TIME='6am' is not a time of day; write HH:MM",
        ),
        ("BACKFILL_BLAZE_GAPS_PER_TICK", "-1", "BACKFILL_BLAZE_GAPS_PER_TICK='-1' is not a whole number of runs"),
        ("BACKFILL_BLAZE_GAPS_FROM", "2024-3-1", "BACKFILL_BLAZE_GAPS_FROM='2024-3-1' is not a date; write YYYY-MM-DD"),
        ("BACKFILL_AUTOMATION_RUNNING", "sometimes", "BACKFILL_AUTOMATION_RUNNING='sometimes' is not true or false"),
    ],
)
def test_a_bad_automation_setting_is_one_line_at_load(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        automation.definitions(load({}), {var: value})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def market(day: date) -> bool:
    return day.weekday() < 5


def test_a_market_source_runs_after_the_close_and_covers_the_weekend_on_monday() -> None:
    """Declared as a market would be: bars final at 17:00 New York (7 h before the day ends), rows on weekdays."""
    auto = Automation(window_days=1, time_of_day="18:00", final_after=-timedelta(hours=7), rows_expected=market)
    ny = ZoneInfo("America/New_York")
    partitions = dg.DailyPartitionsDefinition("2024-01-01", timezone="America/New_York", end_offset=1)
    cfg = settings.ScheduleSettings(window_days=1, time_of_day=datetime.strptime("18:00", "%H:%M").time(), days_ahead=0)
    assert schedule_range(partitions, auto, cfg, datetime(2024, 3, 6, 18, 0, tzinfo=ny)) == ("2024-03-06", "2024-03-06")
    assert schedule_range(partitions, auto, cfg, datetime(2024, 3, 11, 18, 0, tzinfo=ny)) == (
        "2024-03-09",
        "2024-03-11",
    )
    saturday = schedule_range(partitions, auto, cfg, datetime(2024, 3, 9, 18, 0, tzinfo=ny))
    assert saturday == "2024-03-09 expects no rows; the next run covers it"
    # freshness: on Sunday evening the latest day due is Friday's, due at Friday's tick plus the grace
    due = expected_latest(partitions, auto, cfg.time_of_day, 2.0, datetime(2024, 3, 10, 20, 0, tzinfo=ny))
    assert due == ("2024-03-08", datetime(2024, 3, 8, 20, 0, tzinfo=ny))


def test_days_ahead_go_as_far_as_the_partitions_exist() -> None:
    """Racecards published a week ahead: partitions with end_offset=7 let the run reach them."""
    auto = Automation(window_days=3, time_of_day="07:00", days_ahead=7)
    cfg = settings.ScheduleSettings(window_days=3, time_of_day=datetime.strptime("07:00", "%H:%M").time(), days_ahead=7)
    at = datetime(2024, 6, 12, 7, 0, tzinfo=UTC)
    ahead = dg.DailyPartitionsDefinition("2024-01-01", end_offset=7)
    assert schedule_range(ahead, auto, cfg, at) == ("2024-06-09", "2024-06-18")
    results = dg.DailyPartitionsDefinition("2024-01-01")  # no end_offset: the window alone
    assert schedule_range(results, auto, cfg, at) == ("2024-06-09", "2024-06-11")


def test_every_registered_source_gets_a_schedule_sensor_and_freshness_check() -> None:
    loaded = load({})
    defs = automation.definitions(loaded)
    names = {s.name for s in defs.sensors or []}
    fresh = {key for c in defs.asset_checks or [] for key in c.check_keys if key.name == "fresh"}  # type: ignore[union-attr]
    schedules = {s.name for s in defs.schedules or []}
    for source in loaded:
        for lane in lanes(source):  # one lane per partitions definition: Racing's results and racecards are two
            assert f"{lane.name}_daily" in schedules
            assert {f"{lane.name}_gaps", f"{lane.name}_freshness"} <= names
    assert {"blaze_daily", "racing_results_daily", "racing_racecards_daily"} <= schedules
    assert {k.asset_key for k in fresh} == {lane.asset_keys[0] for s in loaded for lane in lanes(s)}
    assert dg.AssetKey(["blaze", "transactions"]) in {k.asset_key for k in fresh}  # the parent table


def test_a_source_declared_with_new_automation_fields_needs_no_code_here() -> None:
    weekly = dataclasses.replace(blaze.SOURCE, name="blaze", automation=Automation(2, "05:15", rows_expected=market))
    [loaded] = load({}, sources=(weekly,))
    tuesday = tick_with(loaded, datetime(2024, 6, 11, 5, 15, tzinfo=LA), {})
    assert span(tuesday) == ("2024-06-07", "2024-06-10")  # the last two weekdays, Fri and Mon, and the weekend
    monday = tick_with(loaded, datetime(2024, 6, 10, 5, 15, tzinfo=LA), {})
    assert isinstance(monday, dg.SkipReason) and "2024-06-09 expects no rows" in (monday.skip_message or "")
