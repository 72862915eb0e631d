"""Blaze POS: transactions and their cart items, daily by the shop's business day."""

import os

import dagster as dg

from backfill_platform.resources.apis import BlazeApi
from backfill_platform.settings import base_url_var, rate_var
from backfill_platform.sources.blaze import assets, checks, partitions, settings

CREDENTIALS = ("BACKFILL_BLAZE_PARTNER_KEY", "BACKFILL_BLAZE_API_KEY")
PARTITIONS = partitions.daily
ASSETS = (assets.transactions, assets.transaction_items)


def resource() -> BlazeApi:
    return BlazeApi(
        base_url=os.environ.get(base_url_var("blaze"), settings.DEFAULT_BASE_URL),
        rate=os.environ.get(rate_var("blaze"), settings.DEFAULT_RATE),
        partner_key=dg.EnvVar("BACKFILL_BLAZE_PARTNER_KEY"),
        api_key=dg.EnvVar("BACKFILL_BLAZE_API_KEY"),
    )


defs = dg.Definitions(
    assets=[assets.transactions, assets.transaction_items],
    asset_checks=[checks.transactions_unique_ids, checks.items_have_transactions, checks.transactions_match_api_totals],
    resources={"blaze": resource()},
)
