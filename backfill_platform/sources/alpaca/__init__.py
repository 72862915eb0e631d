"""Alpaca Market Data: OHLCV stock bars of a configured universe, one asset per timeframe, by New York date."""

from datetime import date

import dagster as dg

from backfill_platform import config
from backfill_platform.resources.apis import AlpacaApi
from backfill_platform.sources.alpaca import assets, checks, partitions, settings, symbols, tables
from backfill_platform.sources.contract import Automation, Option, Source, SourceConfig


def weekday(day: date) -> bool:
    return day.weekday() < 5


def members(cfg: SourceConfig) -> list[str]:
    """What each day's ledger commit records: every configured symbol with the feed and adjustment."""
    return [assets.member(s, cfg["FEED"], cfg["ADJUSTMENT"]) for s in cfg["SYMBOLS"]]


def resource(cfg: SourceConfig) -> AlpacaApi:
    return AlpacaApi(key_id=dg.EnvVar("BACKFILL_ALPACA_KEY_ID"), secret_key=dg.EnvVar("BACKFILL_ALPACA_SECRET_KEY"))


SOURCE = Source(
    name="alpaca",
    title="Alpaca Market Data (stock bars)",
    first_day=settings.FIRST_DAY,
    timezone=settings.TIMEZONE,
    credentials=("BACKFILL_ALPACA_KEY_ID", "BACKFILL_ALPACA_SECRET_KEY"),
    tables=tables.TABLES,
    resource=resource,
    partitions=partitions.daily,
    assets=assets.build,
    checks=checks.build,
    # Weekends have no bars: a zero-row weekend is not suspect (a market holiday, unknown here, is refetched once).
    automation=Automation(
        window_days=settings.SCHEDULE_WINDOW_DAYS, time_of_day=settings.SCHEDULE_TIME, rows_expected=weekday
    ),
    options=(
        Option(
            "TIMEFRAMES",
            settings.TIMEFRAMES,
            symbols.parse_timeframes,
            "a comma list of timeframes of 1-59Min, 1-23Hour or 1Day; write e.g. 1Min,15Min,1Hour,4Hour,1Day",
        ),
        Option(
            "SYMBOLS",
            settings.SYMBOLS,
            symbols.parse_symbols,
            "a comma list of symbols (e.g. AAPL,BRK.B) or @path to a readable file of one symbol a line",
        ),
        Option("FEED", settings.FEED, symbols.one_of(settings.FEEDS), "a feed: iex (free accounts), sip or otc"),
        Option(
            "ADJUSTMENT",
            settings.ADJUSTMENT,
            symbols.one_of(settings.ADJUSTMENTS),
            "an adjustment: raw, split, dividend or all",
        ),
        Option(
            "MAX_QUERY_CHARS",
            settings.MAX_QUERY_CHARS,
            config.parse_positive_int,
            "a whole number of characters of at least 1 (the query-string bound, default 6000)",
        ),
        Option("BUFFER_BARS", settings.BUFFER_BARS, config.parse_positive_int, "a whole number of bars of at least 1"),
        Option("MIN_SYMBOL_SHARE", settings.MIN_SYMBOL_SHARE, symbols.parse_share, "a share between 0 and 1"),
    ),
    members=members,
)
