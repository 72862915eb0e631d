"""Typed iterators over Blaze's transactions pages (paging, de-duplication and validation; no sleeps, no retries)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from backfill_platform.resources.http import ApiError, ApiSession
from backfill_platform.resources.pagination import skip_limit_pages
from backfill_platform.sources.blaze import settings


def _mdy(day: date) -> str:
    return day.strftime("%m/%d/%Y")


class BlazeClient:
    def __init__(self, session: ApiSession, end_inclusive: bool = True) -> None:
        self.session, self.end_inclusive = session, end_inclusive
        self.last_total: int | None = None  # `total` of the latest page: the fetch records it, the check compares

    def _page(self, first: date, last: date, skip: int, limit: int) -> dict:
        end = last if self.end_inclusive else last + timedelta(days=1)
        page = self.session.get(
            settings.TRANSACTIONS_ROUTE,
            {"startDate": _mdy(first), "endDate": _mdy(end), "skip": skip, "limit": limit},
        )
        if (
            not isinstance(page, dict)
            or not isinstance(page.get("values"), list)
            or not isinstance(page.get("total"), int)
        ):
            raise ApiError("blaze", settings.TRANSACTIONS_ROUTE, "malformed page: expected {values: [...], total: n}")
        self.last_total = page["total"]
        for tx in page["values"]:
            if not isinstance(tx, dict) or not isinstance(tx.get("id"), str) or "processedTime" not in tx:
                raise ApiError(
                    "blaze", settings.TRANSACTIONS_ROUTE, "malformed page: a transaction lacks id or processedTime"
                )
        return page

    def transactions(self, first: date, last: date) -> Iterator[list[dict]]:
        """Transactions of business days first..last (≤ 7 days), de-duplicated by id, page by page."""
        if (last - first).days + 1 > settings.MAX_WINDOW_DAYS:
            raise ValueError(f"a Blaze window spans at most {settings.MAX_WINDOW_DAYS} days: {first}..{last}")
        yield from skip_limit_pages(
            lambda skip, limit: self._page(first, last, skip, limit), settings.PAGE_SIZE, "values", lambda t: t["id"]
        )


def windows(days: list[date], max_days: int = settings.MAX_WINDOW_DAYS) -> Iterator[list[date]]:
    """Consecutive runs of days cut into windows of at most `max_days`: the fewest calls, no day fetched twice."""
    run: list[date] = []
    for day in days:
        if run and (day - run[-1] != timedelta(days=1) or len(run) == max_days):
            yield run
            run = []
        run.append(day)
    if run:
        yield run
