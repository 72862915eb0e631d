"""Racing API constants (non-secret): routes, page sizes, documented limits and first days, schedule defaults."""

from datetime import date

COURSES_ROUTE = "/v1/courses"
REGIONS_ROUTE = "/v1/courses/regions"
RESULTS_ROUTE = "/v1/results"
RACECARDS_ROUTE = "/v1/racecards/pro"
RESULTS_PAGE = 100  # `limit` is 1..100 on /v1/results
RESULTS_MAX_SKIP = 20_000  # `skip` is at most 20,000
RESULTS_MAX_DAYS = 365  # "Max range 365 days"
RACECARDS_PAGE = 500  # `limit` is 1..500 on /v1/racecards/pro, `skip` at most 500
# Results of one chunk are held until the chunk is complete (the API documents no order across dates): 60 days is
# ~1,700 races (~17 pages, a few MB) at the measured ~28 races a day, and costs within 1 % of one 365-day chunk.
CHUNK_DAYS = "60"
RACECARD_DAYS_AHEAD = 8  # days of racecards fetched ahead of the writers (a day is one call, well under 1 MB)
FIRST_DAY = date(2015, 1, 1)  # where the replaced backfill started; BACKFILL_RACING_START overrides it
RACECARDS_FROM = date(2023, 1, 23)  # "Historical racecards are available from 2023-01-23"
TIMEZONE = "Europe/London"  # race dates are the course's local day; GB and IRE share this calendar
REGIONS = ""  # every region; e.g. "gb,ire" for Great Britain and Ireland only
# Stewards' amendments and late results arrive over a few days: the daily schedule re-runs the trailing days.
SCHEDULE_WINDOW_DAYS = 3
SCHEDULE_TIME = "23:30"
