"""Blaze POS: transactions and their cart items, daily by the shop's business day."""

import dagster as dg

from backfill_platform import config
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sources.blaze import assets, checks, partitions, settings, tables
from backfill_platform.sources.contract import Automation, Option, Source, SourceConfig


def resource(cfg: SourceConfig) -> BlazeApi:
    return BlazeApi(
        partner_key=dg.EnvVar("BACKFILL_BLAZE_PARTNER_KEY"),
        api_key=dg.EnvVar("BACKFILL_BLAZE_API_KEY"),
        end_inclusive=cfg["END_INCLUSIVE"],
    )


SOURCE = Source(
    name="blaze",
    title="Blaze POS",
    first_day=settings.FIRST_DAY,
    timezone=settings.TIMEZONE,
    credentials=("BACKFILL_BLAZE_PARTNER_KEY", "BACKFILL_BLAZE_API_KEY"),
    tables=(tables.TRANSACTIONS, tables.TRANSACTION_ITEMS),
    resource=resource,
    partitions=partitions.daily,
    assets=assets.build,
    checks=checks.CHECKS,
    automation=Automation(window_days=settings.SCHEDULE_WINDOW_DAYS, time_of_day=settings.SCHEDULE_TIME),
    options=(
        Option("TIMEZONE", settings.TIMEZONE, config.parse_timezone, "a time zone; write e.g. America/Los_Angeles"),
        Option("END_INCLUSIVE", settings.END_INCLUSIVE, config.parse_bool, "true or false"),
    ),
)
