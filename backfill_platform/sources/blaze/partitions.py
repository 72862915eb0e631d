"""Daily partitions by the shop's local business day."""

import dagster as dg

from backfill_platform.sources.blaze import settings

daily = dg.DailyPartitionsDefinition(start_date=settings.START_DATE, timezone=settings.TIMEZONE)
