"""Blaze constants (non-secret): where the API is, how it pages, how fast the platform may call it."""

import os

TRANSACTIONS_ROUTE = "/api/v1/partner/transactions"
PAGE_SIZE = 100  # the API caps pages at 100 transactions
MAX_WINDOW_DAYS = 7  # "The maximum date range is 7 days"
START_DATE = "2023-01-01"
# The shop's business day: Blaze dates are read in the shop's time zone ([UNCONFIRMED], hence configurable).
TIMEZONE = os.environ.get("BACKFILL_BLAZE_TIMEZONE", "America/Los_Angeles")
# Whether endDate includes that whole day ([UNCONFIRMED] in the docs; the observed API behaves inclusively).
END_INCLUSIVE = os.environ.get("BACKFILL_BLAZE_END_INCLUSIVE", "true").lower() not in ("0", "false", "no")
