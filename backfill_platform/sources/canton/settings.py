"""Splice Scan constants (non-secret)."""

import os

UPDATES_ROUTE = "/api/scan/v2/updates"
MIGRATION_INFO_ROUTE = "/api/scan/v0/backfilling/migration-info"
PAGE_SIZE = 1000  # the server's default maximum
START_DATE = "2024-06-24"  # MainNet's first record time
# Days fetched at once (one cursor stream per day and migration); the writer still commits day by day.
STREAMS = int(os.environ.get("BACKFILL_CANTON_STREAMS", "4"))
# Pages of one day held ahead of its writer's COPY (≈3 MB each at 1000 updates): bounds memory per stream.
PAGES_AHEAD = 8
# Where migration-info is not served (an internal SV endpoint), the migration ids to walk, e.g. "0,1,2,3".
MIGRATIONS = os.environ.get("BACKFILL_CANTON_MIGRATIONS", "")
# A Scan that has not loaded its history answers 503 for a while: wait that out rather than fail.
MAX_ATTEMPTS = 40
MAX_RETRY_WAIT_S = 1800.0
