"""Blaze assets: raw transactions fetched in ≤ 7-day windows, and their cart items derived in SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import dagster as dg

from backfill_platform.io_managers.spec import Batches, PartitionBatch
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.resources.http import share
from backfill_platform.sources.blaze.client import BlazeClient, windows
from backfill_platform.sources.blaze.tables import TRANSACTION_ITEMS, TRANSACTIONS
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.fetching import fetched_tables


class TransactionRow(NamedTuple):
    """One row of blaze.transactions (field names are its columns); the whole record stays in `payload`."""

    id: str
    business_date: date | None
    processed_at: datetime | None
    created_at: datetime | None
    modified_at: datetime | None
    completed_at: datetime | None
    status: str | None
    trans_type: str | None
    queue_type: str | None
    trans_no: str | None
    shop_id: str | None
    member_id: str | None
    seller_id: str | None
    subtotal: Any
    discount: Any
    tax: Any
    total: Any
    payment_option: str | None
    item_count: int
    payload: dict


def _ts(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int | float) else None


def transaction_row(tx: dict, shop_tz: ZoneInfo) -> TransactionRow:
    processed = _ts(tx["processedTime"])
    cart = tx.get("cart") or {}
    return TransactionRow(
        id=tx["id"],
        business_date=processed.astimezone(shop_tz).date() if processed else None,
        processed_at=processed,
        created_at=_ts(tx.get("created")),
        modified_at=_ts(tx.get("modified")),
        completed_at=_ts(tx.get("completedTime")),
        status=tx.get("status"),
        trans_type=tx.get("transType"),
        queue_type=tx.get("queueType"),
        trans_no=tx.get("transNo"),
        shop_id=tx.get("shopId"),
        member_id=tx.get("memberId"),
        seller_id=tx.get("sellerId"),
        subtotal=cart.get("subTotal"),
        discount=cart.get("totalDiscount"),
        tax=cart.get("tax"),
        total=cart.get("total"),
        payment_option=cart.get("paymentOption"),
        item_count=len(cart.get("items") or []),
        payload=tx,
    )


def fetch_transactions(context: dg.AssetExecutionContext, blaze: BlazeApi, shop_tz: ZoneInfo) -> Batches:
    """The pending business days in the fewest calls: consecutive days cut into ≤ 7-day windows, pages of 100,
    ids de-duplicated across pages and windows, each day committed on its own."""
    session = blaze.session()
    client = BlazeClient(session, blaze.end_inclusive)
    run_start = session.metrics.snapshot()

    def produce(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        seen: set[str] = set()
        for window in windows([date.fromisoformat(k) for k in keys]):
            before = session.metrics.snapshot()
            by_day: dict[date, list[TransactionRow]] = {day: [] for day in window}
            stray = 0
            client.last_total = None
            for page in client.transactions(window[0], window[-1]):
                for tx in page:
                    if tx["id"] in seen:
                        continue
                    seen.add(tx["id"])
                    row = transaction_row(tx, shop_tz)
                    if row.business_date is not None and row.business_date in by_day:
                        by_day[row.business_date].append(row)
                    else:
                        stray += 1  # the API placed it in this window but its business day is outside the run
            if stray:
                context.log.warning(f"{stray} transactions of {window[0]}..{window[-1]} fall outside the run's days")
            cost = session.metrics.since(before)
            # One window's calls serve several days: each day carries its share by rows, and the shares add up.
            calls = share(int(cost["calls"]), [len(rows) for rows in by_day.values()])
            for (day, rows), day_calls in zip(by_day.items(), calls, strict=True):
                yield PartitionBatch(
                    day.isoformat(),
                    rows,
                    columns=TransactionRow._fields,
                    metadata={
                        "api_calls": day_calls,
                        "window": f"{window[0]}..{window[-1]}",
                        "window_api_calls": int(cost["calls"]),
                        "window_api_total": client.last_total or 0,
                        "window_429s": int(cost["http_429"]),
                        "window_budget_wait_s": cost["budget_wait_s"],
                    },
                )

    return Batches(produce, summary=lambda: {f"api_{k}": v for k, v in session.metrics.since(run_start).items()})


def build(config: SourceConfig, partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    shop_tz = ZoneInfo(config.timezone)
    return [
        fetched_tables(
            source="blaze",
            parent=TRANSACTIONS,
            children=[TRANSACTION_ITEMS],
            partitions_def=partitions,
            fetch=lambda context, blaze: fetch_transactions(context, blaze, shop_tz),
        )
    ]
