"""Stacks (Hiro): the transaction history of tracked wallets, daily by block time (UTC)."""

import os

import dagster as dg

from backfill_platform.resources.apis import StacksApi
from backfill_platform.sources.contract import Automation, Option, Source, SourceConfig
from backfill_platform.sources.stacks import assets, checks, partitions, settings, tables
from backfill_platform.sources.stacks.wallets import parse_wallets

API_KEY = "BACKFILL_STACKS_API_KEY"


def resource(cfg: SourceConfig) -> StacksApi:
    # The key is optional: without it the anonymous budget applies (EnvVar of an unset variable would fail the run).
    return StacksApi(api_key=dg.EnvVar(API_KEY) if os.environ.get(API_KEY) else "")


SOURCE = Source(
    name="stacks",
    title="Stacks wallets (Hiro)",
    first_day=settings.FIRST_DAY,
    timezone=settings.TIMEZONE,
    credentials=(),  # the API key is optional
    tables=(tables.WALLET_TRANSACTIONS,),
    resource=resource,
    partitions=partitions.daily,
    assets=assets.build,
    checks=checks.CHECKS,
    automation=Automation(window_days=settings.SCHEDULE_WINDOW_DAYS, time_of_day=settings.SCHEDULE_TIME),
    options=(
        Option(
            "WALLETS", settings.WALLETS, parse_wallets, "a comma list of Stacks addresses or @path to a file of them"
        ),
    ),
    members="WALLETS",
)
