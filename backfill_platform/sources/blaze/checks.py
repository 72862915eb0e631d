"""Blaze asset checks on the run's business days only: unique ids, no orphan items, and per fetch window the rows
in PostgreSQL equal the `total` the API gave when the window was fetched (recorded then, so no extra call)."""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url, fetch_one
from backfill_platform.sources.blaze.tables import TRANSACTION_ITEMS, TRANSACTIONS
from backfill_platform.sources.checks import Findings, daily_check

WINDOW, TOTAL = "window", "window_api_total"


def latest() -> date | None:
    """The day a check launched without partitions looks at: the newest stored."""
    return fetch_one(sql.SQL("SELECT max(business_date) FROM {}").format(TRANSACTIONS.ident))[0]


def per_day(query: sql.Composed, days: Sequence[date]) -> dict[date, tuple]:
    """Rows of `query` (grouped by business_date, which it returns first) over `days`."""
    with psycopg.connect(database_url()) as conn:
        return {row[0]: row[1:] for row in conn.execute(query, {"days": list(days)}).fetchall()}


@daily_check(TRANSACTIONS.key, "No transaction id appears twice (in the run's days).", latest)
def transactions_unique_ids(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    counts = per_day(
        sql.SQL(
            "SELECT business_date, count(*), count(DISTINCT id) FROM {} WHERE business_date = ANY(%(days)s) "
            "GROUP BY business_date"
        ).format(TRANSACTIONS.ident),
        days,
    )
    bad = {d.isoformat(): f"{n - distinct} duplicates" for d, (n, distinct) in counts.items() if n != distinct}
    return Findings(bad, {"rows": sum(n for n, _ in counts.values())})


@daily_check(TRANSACTION_ITEMS.key, "Every item of the run's days belongs to a stored sale.", latest)
def items_have_transactions(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    orphans = per_day(
        sql.SQL(
            "SELECT i.business_date, count(*) FROM {items} i WHERE i.business_date = ANY(%(days)s) "
            "AND NOT EXISTS (SELECT 1 FROM {tx} t WHERE t.id = i.transaction_id) GROUP BY i.business_date"
        ).format(items=TRANSACTION_ITEMS.ident, tx=TRANSACTIONS.ident),
        days,
    )
    bad = {d.isoformat(): f"{n} orphan items" for d, (n,) in orphans.items()}
    return Findings(bad, {"orphan_items": sum(n for (n,) in orphans.values())})


def recorded_windows(instance: dg.DagsterInstance, days: Sequence[date]) -> dict[str, dict[str, Any]]:
    """Per day, the fetch window and its API `total` from the day's latest materialization that recorded them."""
    wanted = {d.isoformat() for d in days}
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while wanted - found.keys():
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=TRANSACTIONS.key, asset_partitions=sorted(wanted - found.keys())),
            limit=4 * len(wanted),
            cursor=cursor,
        )
        for record in page.records:
            m = record.asset_materialization
            if m is not None and m.partition in wanted and m.partition not in found and TOTAL in m.metadata:
                found[m.partition] = {WINDOW: m.metadata[WINDOW].value, TOTAL: m.metadata[TOTAL].value}
        if not page.has_more:
            break
        cursor = page.cursor
    return found


def span(window: str) -> list[date]:
    first, _, last = window.partition("..")
    return run_days_between(date.fromisoformat(first), date.fromisoformat(last))


def run_days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@daily_check(
    TRANSACTIONS.key,
    "Per fetch window of the run's days, rows in PostgreSQL equal the API's total seen by the fetch.",
    latest,
)
def transactions_match_api_totals(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    recorded = recorded_windows(context.instance, days)
    windows = {seen[WINDOW] for seen in recorded.values()}
    # A window's total covers all its days: those outside the run are counted too (at most 6 more).
    extra = sorted({d for w in windows for d in span(w)} - set(days))
    recorded.update(recorded_windows(context.instance, extra))
    stored = {
        d: n
        for d, (n,) in per_day(
            sql.SQL(
                "SELECT business_date, count(*) FROM {} WHERE business_date = ANY(%(days)s) GROUP BY business_date"
            ).format(TRANSACTIONS.ident),
            [*days, *extra],
        ).items()
    }
    bad: dict[str, str] = {}
    unchecked = [d.isoformat() for d in days if d.isoformat() not in recorded]
    for window in sorted(windows):
        members = span(window)
        if any(recorded.get(d.isoformat(), {}).get(WINDOW) != window for d in members):
            # a later run fetched part of this window again: this total no longer describes what is stored
            unchecked.extend(d.isoformat() for d in members if d in days)
            continue
        rows, total = sum(stored.get(d, 0) for d in members), recorded[members[0].isoformat()][TOTAL]
        if rows != total:
            bad.update(
                {d.isoformat(): f"window {window}: postgres {rows} vs api {total}" for d in members if d in days}
            )
    return Findings(bad, {"windows_checked": len(windows), "days_unchecked": dg.MetadataValue.json(sorted(unchecked))})


CHECKS = (transactions_unique_ids, items_have_transactions, transactions_match_api_totals)
