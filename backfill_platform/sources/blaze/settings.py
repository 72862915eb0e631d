"""Blaze constants (non-secret): where the API is, how it pages, how fast the platform may call it."""

from datetime import date

TRANSACTIONS_ROUTE = "/api/v1/partner/transactions"
PAGE_SIZE = 100  # the API caps pages at 100 transactions
MAX_WINDOW_DAYS = 7  # "The maximum date range is 7 days"
FIRST_DAY = date(2023, 1, 1)  # BACKFILL_BLAZE_START overrides it: a shop with older history sets its own
# The shop's business day: Blaze dates are read in the shop's time zone ([UNCONFIRMED], hence BACKFILL_BLAZE_TIMEZONE).
TIMEZONE = "America/Los_Angeles"
# Whether endDate includes that whole day ([UNCONFIRMED] in the docs; the observed API behaves inclusively).
END_INCLUSIVE = "true"
# Late voids and edited carts arrive for a few days: the daily schedule re-runs the trailing days.
SCHEDULE_WINDOW_DAYS = 3
SCHEDULE_TIME = "06:00"
