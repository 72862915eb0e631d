"""Splice Scan constants (non-secret)."""

from datetime import date

UPDATES_ROUTE = "/api/scan/v2/updates"
MIGRATION_INFO_ROUTE = "/api/scan/v0/backfilling/migration-info"
PAGE_SIZE = 1000  # the server's default maximum
FIRST_DAY = date(2024, 6, 24)  # MainNet's first record time
TIMEZONE = "UTC"  # record time
# Days fetched at once (one cursor stream per day and migration; BACKFILL_CANTON_STREAMS); writers commit day by day.
STREAMS = "4"
# Pages of one day held ahead of its writer's COPY (≈3 MB each at 1000 updates): bounds memory per stream.
PAGES_AHEAD = 8
# A Scan that has not loaded its history answers 503 "has not yet loaded its updates history" for a while: that answer
# alone is waited out this long (CantonApi's warm-up rule); any other failure keeps the ordinary 8 attempts / 300 s.
WARMUP_MAX_ATTEMPTS = 40
WARMUP_MAX_WAIT_S = 1800.0
# A record day is final once it has passed: the daily schedule fetches yesterday.
SCHEDULE_WINDOW_DAYS = 1
SCHEDULE_TIME = "00:30"
