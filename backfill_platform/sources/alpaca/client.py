"""Typed pages of GET /v2/stocks/bars: many symbols a request, the whole range, next_page_token to the end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from backfill_platform.resources.http import ApiError, ApiSession
from backfill_platform.resources.pagination import token_pages
from backfill_platform.sources.alpaca import settings

Page = dict[str, list[dict]]  # symbol → its bars on this page, ascending by t
BAR_FIELDS = ("t", "o", "h", "l", "c", "v")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AlpacaClient:
    def __init__(self, session: ApiSession, feed: str, adjustment: str) -> None:
        self.session, self.feed, self.adjustment = session, feed, adjustment

    def params(self, symbols: Sequence[str], timeframe: str, start: datetime, end: datetime) -> dict[str, str | int]:
        """One request's parameters: identical on every page of its stream (the page token requires it)."""
        return {
            "symbols": ",".join(symbols),
            "timeframe": timeframe,
            "start": rfc3339(start),
            "end": rfc3339(end),
            "limit": settings.MAX_LIMIT,
            "feed": self.feed,
            "adjustment": self.adjustment,
        }

    def _page(self, params: dict[str, str | int], token: str | None) -> dict:
        try:
            page = self.session.get(settings.BARS_ROUTE, {**params, **({"page_token": token} if token else {})})
        except ApiError as exc:
            if exc.status == 403:
                raise ApiError(
                    "alpaca",
                    settings.BARS_ROUTE,
                    f"HTTP 403 (forbidden): check BACKFILL_ALPACA_KEY_ID and BACKFILL_ALPACA_SECRET_KEY, and that "
                    f"the plan permits feed={self.feed} (free accounts: BACKFILL_ALPACA_FEED=iex)",
                    403,
                ) from None
            raise
        if not isinstance(page, dict) or not isinstance(page.get("bars") or {}, dict):
            raise ApiError("alpaca", settings.BARS_ROUTE, "malformed page: expected {bars: {symbol: [...]}, ...}")
        page["bars"] = page.get("bars") or {}  # Alpaca sends null when no symbol has bars
        for symbol, bars in page["bars"].items():
            if not isinstance(bars, list) or any(
                not isinstance(b, dict) or not all(f in b for f in BAR_FIELDS) for b in bars
            ):
                raise ApiError("alpaca", settings.BARS_ROUTE, f"malformed page: a bar of {symbol} lacks t/o/h/l/c/v")
        return page

    def bars(self, symbols: Sequence[str], timeframe: str, start: datetime, end: datetime) -> Iterator[Page]:
        """Bars of `symbols` with start <= t <= end, page by page (symbol-major: a page may end inside a symbol)."""
        params = self.params(symbols, timeframe, start, end)
        for page in token_pages(lambda token: self._page(params, token)):
            yield page["bars"]


def query_chars(params: dict[str, str | int]) -> int:
    """Characters of the encoded query string, as httpx sends it (commas as %2C)."""
    return len(urlencode(params, quote_via=quote, safe=""))


def symbol_groups(symbols: Sequence[str], base: dict[str, str | int], max_query_chars: int) -> list[list[str]]:
    """Consecutive runs of the (sorted) symbols, each as long as fits one request's query string, page token
    included: the fewest requests, since a page's `limit` counts bars across all symbols of the request."""
    budget = max_query_chars - settings.PAGE_TOKEN_RESERVE - query_chars({**base, "symbols": ""})
    groups: list[list[str]] = []
    used = 0
    for symbol in symbols:
        cost = len(quote(symbol, safe="")) + 3  # the symbol and its %2C
        if groups and used + cost <= budget:
            groups[-1].append(symbol)
            used += cost
        else:
            if cost > budget:
                raise ValueError(f"BACKFILL_ALPACA_MAX_QUERY_CHARS={max_query_chars} cannot hold symbol {symbol}")
            groups.append([symbol])
            used = cost
    return groups
