"""Daily partitions by race date: results from the configured first day, racecards from the API's floor."""

import dagster as dg

from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.racing import settings


def daily(config: SourceConfig) -> dg.TimeWindowPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=config.start.isoformat(), timezone=config.timezone)


def racecard_days(config: SourceConfig) -> dg.TimeWindowPartitionsDefinition:
    """Racecards exist from 2023-01-23 only: earlier days are no partitions, so they cost no call at all."""
    start = max(config.start, settings.RACECARDS_FROM)
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone=config.timezone)
