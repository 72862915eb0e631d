"""Blaze assets: raw transactions fetched in ≤ 7-day windows, and their cart items derived in SQL."""

import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster import AssetExecutionContext
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers.ledger import pending_partitions
from backfill_platform.io_managers.spec import Batches, PartitionBatch, SqlInsert
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sources.blaze import settings
from backfill_platform.sources.blaze.client import BlazeClient, windows
from backfill_platform.sources.blaze.partitions import daily
from backfill_platform.sources.blaze.tables import TRANSACTIONS

SHOP_TZ = ZoneInfo(settings.TIMEZONE)


def _ts(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int | float) else None


def transaction_row(tx: dict) -> tuple:
    """One typed row per transaction, in TRANSACTIONS column order; the whole record stays in `payload`."""
    processed = _ts(tx["processedTime"])
    cart = tx.get("cart") or {}
    return (
        tx["id"],
        processed.astimezone(SHOP_TZ).date() if processed else None,
        processed,
        _ts(tx.get("created")),
        _ts(tx.get("modified")),
        _ts(tx.get("completedTime")),
        tx.get("status"),
        tx.get("transType"),
        tx.get("queueType"),
        tx.get("transNo"),
        tx.get("shopId"),
        tx.get("memberId"),
        tx.get("sellerId"),
        cart.get("subTotal"),
        cart.get("totalDiscount"),
        cart.get("tax"),
        cart.get("total"),
        cart.get("paymentOption"),
        len(cart.get("items") or []),
        tx,
    )


@dg.asset(
    key=["blaze", "transactions"],
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="io_manager",
    group_name="blaze",
    kinds={"postgres", "api"},
    pool="blaze",
)
def transactions(context: AssetExecutionContext, blaze: BlazeApi) -> Batches:
    """Blaze POS sales, one row per transaction, by the shop's business day.

    A ranged run turns its days into the fewest calls the API allows (≤ 7-day windows, 100 a page), skips days its
    lineage already committed, de-duplicates by id across pages and windows, and commits day by day. A day's answer is
    authoritative: re-materialising it replaces the day, so late voids and edited carts show.
    """
    session = blaze.session()
    client = BlazeClient(session)
    days = [date.fromisoformat(k) for k in pending_partitions(context, database_url())]
    run_start = session.metrics.snapshot()

    items = [0]  # cart lines of the whole run, for the run's metadata

    def batches() -> Iterator[PartitionBatch]:
        seen: set[str] = set()
        for window in windows(days):
            before, started = session.metrics.snapshot(), time.perf_counter()
            by_day: dict[date, list[tuple]] = defaultdict(list)
            stray = 0
            for page in client.transactions(window[0], window[-1]):
                for tx in page:
                    if tx["id"] in seen:
                        continue
                    seen.add(tx["id"])
                    row = transaction_row(tx)
                    if row[1] in window:
                        by_day[row[1]].append(row)
                    else:
                        stray += 1  # the API placed it in this window but its business day is outside the run
            if stray:
                context.log.warning(f"{stray} transactions of {window[0]}..{window[-1]} fall outside the run's days")
            cost = session.metrics.since(before)
            seconds = time.perf_counter() - started
            fetched = sum(len(v) for v in by_day.values())
            for day in window:
                rows = by_day.pop(day, [])
                items[0] += sum(r[18] for r in rows)
                yield PartitionBatch(
                    day.isoformat(),
                    rows,
                    metadata={
                        "transactions": len(rows),
                        "items": sum(r[18] for r in rows),
                        "window": f"{window[0]}..{window[-1]}",
                        "window_api_calls": int(cost["calls"]),
                        "window_429s": int(cost["http_429"]),
                        "window_budget_wait_s": cost["budget_wait_s"],
                        "window_fetch_rows_per_s": round(fetched / seconds) if seconds else 0,
                    },
                )

    return Batches(
        batches(),
        summary=lambda: {"items": items[0], **{f"api_{k}": v for k, v in session.metrics.since(run_start).items()}},
    )


ITEMS_SELECT = sql.SQL("""
SELECT t.id, i->>'id', t.business_date, i->>'productId', i->>'productName', i->>'productSku', i->>'brandName',
       i->>'categoryName', (i->>'quantity')::numeric, (i->>'unitPrice')::numeric, (i->>'discount')::numeric,
       (i->>'finalPrice')::numeric, (i->>'calcTax')::numeric, i->>'status', i->>'batchId'
FROM {transactions} t CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'cart'->'items', '[]')) i
WHERE t.business_date >= %(start)s AND t.business_date < %(end)s
""").format(transactions=TRANSACTIONS.ident)


@dg.asset(
    key=["blaze", "transaction_items"],
    deps=[transactions],
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="io_manager",
    group_name="blaze",
    kinds={"postgres"},
)
def transaction_items(context: AssetExecutionContext) -> SqlInsert:
    """Cart line items of each sale, computed in PostgreSQL from the raw payload (no API calls).

    Replaced per business day, so an item removed from a cart disappears. Key (transaction_id, item_id).
    """
    return SqlInsert(ITEMS_SELECT)
