"""Canton / Splice Scan: ledger updates and their events, daily by record time."""

from backfill_platform import config
from backfill_platform.resources.apis import CantonApi
from backfill_platform.sources.canton import assets, checks, partitions, settings, tables
from backfill_platform.sources.contract import Automation, Option, Source, SourceConfig


def resource(cfg: SourceConfig) -> CantonApi:
    return CantonApi(
        warmup_max_attempts=settings.WARMUP_MAX_ATTEMPTS,
        warmup_max_wait_s=settings.WARMUP_MAX_WAIT_S,
        migrations=cfg["MIGRATIONS"],
    )


SOURCE = Source(
    name="canton",
    title="Canton / Splice Scan",
    first_day=settings.FIRST_DAY,
    timezone=settings.TIMEZONE,
    credentials=(),  # Scan declares no authentication
    tables=(tables.UPDATES, tables.EVENTS),
    resource=resource,
    partitions=partitions.daily,
    assets=assets.build,
    checks=checks.CHECKS,
    automation=Automation(window_days=settings.SCHEDULE_WINDOW_DAYS, time_of_day=settings.SCHEDULE_TIME),
    options=(
        Option("STREAMS", settings.STREAMS, config.parse_positive_int, "a whole number of days of at least 1"),
        Option("MIGRATIONS", "", config.parse_int_list, "a comma list of migration ids; write e.g. 0,1,2"),
    ),
)
