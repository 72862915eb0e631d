"""Blaze asset checks: unique ids, no orphan items, and per-day counts equal to the API's own totals."""

from datetime import date, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url, fetch_one
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.blaze.client import BlazeClient
from backfill_platform.sources.blaze.tables import TRANSACTION_ITEMS, TRANSACTIONS


def run_days(context: dg.AssetCheckExecutionContext) -> list[date]:
    """The business days the triggering run wrote (a range, one partition, or else the last week in the table)."""
    tags = context.run.tags
    if RANGE_START_TAG in tags:
        first, last = date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
    elif "dagster/partition" in tags:
        first = last = date.fromisoformat(tags["dagster/partition"])
    else:
        (latest,) = fetch_one(sql.SQL("SELECT max(business_date) FROM {}").format(TRANSACTIONS.ident))
        if latest is None:
            return []
        first, last = latest - timedelta(days=6), latest
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dg.asset_check(asset=TRANSACTIONS.key, description="No transaction id appears twice.")
def transactions_unique_ids() -> dg.AssetCheckResult:
    total, distinct = fetch_one(sql.SQL("SELECT count(*), count(DISTINCT id) FROM {}").format(TRANSACTIONS.ident))
    return dg.AssetCheckResult(passed=total == distinct, metadata={"rows": total, "duplicates": total - distinct})


@dg.asset_check(asset=TRANSACTION_ITEMS.key, description="Every item belongs to a stored transaction.")
def items_have_transactions() -> dg.AssetCheckResult:
    (orphans,) = fetch_one(
        sql.SQL(
            "SELECT count(*) FROM {items} i WHERE NOT EXISTS (SELECT 1 FROM {tx} t WHERE t.id = i.transaction_id)"
        ).format(items=TRANSACTION_ITEMS.ident, tx=TRANSACTIONS.ident)
    )
    return dg.AssetCheckResult(passed=orphans == 0, metadata={"orphan_items": orphans})


@dg.asset_check(asset=TRANSACTIONS.key, description="Per business day, rows in PostgreSQL equal the API's total.")
def transactions_match_api_totals(context: dg.AssetCheckExecutionContext, blaze: BlazeApi) -> dg.AssetCheckResult:
    client = BlazeClient(blaze.session(), blaze.end_inclusive)
    days = run_days(context)
    mismatches = {}
    with psycopg.connect(database_url()) as conn:
        stored = dict(
            conn.execute(
                sql.SQL(
                    "SELECT business_date, count(*) FROM {} WHERE business_date = ANY(%s) GROUP BY business_date"
                ).format(TRANSACTIONS.ident),
                (days,),
            ).fetchall()
        )
    for day in days:
        api_total = client.total(day, day)
        if stored.get(day, 0) != api_total:
            mismatches[day.isoformat()] = f"postgres {stored.get(day, 0)} vs api {api_total}"
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={"days_checked": len(days), "mismatched_days": dg.MetadataValue.json(mismatches)},
    )


CHECKS = (transactions_unique_ids, items_have_transactions, transactions_match_api_totals)
