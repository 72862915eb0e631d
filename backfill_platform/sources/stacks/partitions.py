"""Daily partitions by block time (UTC), from the configured first day."""

import dagster as dg

from backfill_platform.sources.contract import SourceConfig


def daily(config: SourceConfig) -> dg.TimeWindowPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=config.start.isoformat(), timezone=config.timezone)
