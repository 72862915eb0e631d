"""The Racing API: courses and regions, results and Pro racecards by race date, and the runners, horses,
jockeys, trainers, owners, pedigrees and bookmakers inside them."""

import dagster as dg

from backfill_platform.errors import ConfigurationError
from backfill_platform.resources.apis import RacingApi
from backfill_platform.resources.budget import parse_rate
from backfill_platform.sources.contract import Automation, Option, Source, SourceConfig
from backfill_platform.sources.racing import assets, checks, partitions, settings, tables


def resource(cfg: SourceConfig) -> RacingApi:
    return RacingApi(
        username=dg.EnvVar("BACKFILL_RACING_USERNAME"),
        password=dg.EnvVar("BACKFILL_RACING_PASSWORD"),
        results_rate=cfg["RESULTS_RATE"],
        racecards_rate=cfg["RACECARDS_RATE"],
        courses_rate=cfg["COURSES_RATE"],
    )


def parse_rate_or_empty(text: str) -> str:
    if text:
        try:
            parse_rate(text)
        except ConfigurationError:
            raise ValueError(text) from None
    return text


def parse_chunk_days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= settings.RESULTS_MAX_DAYS:
        raise ValueError(text)
    return days


def parse_regions(text: str) -> list[str]:
    codes = [c.strip().lower() for c in text.split(",") if c.strip()]
    if any(not c.isalpha() for c in codes):
        raise ValueError(text)
    return codes


SOURCE = Source(
    name="racing",
    title="The Racing API",
    first_day=settings.FIRST_DAY,
    timezone=settings.TIMEZONE,
    credentials=("BACKFILL_RACING_USERNAME", "BACKFILL_RACING_PASSWORD"),
    tables=(
        tables.COURSES,
        tables.REGIONS,
        tables.RESULTS,
        tables.RUNNERS,
        *tables.ENTITIES,
        tables.RACECARDS,
        tables.RACECARD_RUNNERS,
        tables.BOOKMAKERS,
    ),
    resource=resource,
    partitions=partitions.daily,
    assets=assets.build,
    checks=checks.CHECKS,
    automation=Automation(window_days=settings.SCHEDULE_WINDOW_DAYS, time_of_day=settings.SCHEDULE_TIME),
    options=(
        Option("CHUNK_DAYS", settings.CHUNK_DAYS, parse_chunk_days, "a number of days from 1 to 365; write e.g. 60"),
        Option("REGIONS", settings.REGIONS, parse_regions, "a comma list of region codes; write e.g. gb,ire"),
        *(
            Option(f"{scope}_RATE", "", parse_rate_or_empty, "a rate; write calls/period such as '5/s'")
            for scope in ("RESULTS", "RACECARDS", "COURSES")
        ),
    ),
)
