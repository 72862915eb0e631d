"""Daily partitions by record time (UTC)."""

import dagster as dg

from backfill_platform.sources.canton import settings

daily = dg.DailyPartitionsDefinition(start_date=settings.START_DATE, timezone="UTC")
