"""Blaze POS: transactions and their cart items, daily by the shop's business day."""

import dagster as dg

from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sources.blaze import assets, checks, partitions

CREDENTIALS = ("BACKFILL_BLAZE_PARTNER_KEY", "BACKFILL_BLAZE_API_KEY")
PARTITIONS = partitions.daily
ASSETS = (assets.transactions, assets.transaction_items)


def resource() -> BlazeApi:
    return BlazeApi(
        partner_key=dg.EnvVar("BACKFILL_BLAZE_PARTNER_KEY"),
        api_key=dg.EnvVar("BACKFILL_BLAZE_API_KEY"),
    )


defs = dg.Definitions(
    assets=[assets.transactions, assets.transaction_items],
    asset_checks=[checks.transactions_unique_ids, checks.items_have_transactions, checks.transactions_match_api_totals],
    resources={"blaze": resource()},
)
