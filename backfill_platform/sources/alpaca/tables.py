"""Alpaca tables: one per timeframe, `alpaca.bars_<tf>`, keyed (symbol, t), merged so a day can gain symbols."""

from __future__ import annotations

from backfill_platform.io_managers.spec import Column, TableSpec, register, spec_for
from backfill_platform.sources.alpaca.symbols import Timeframe, parse_timeframes

COLUMNS = (
    Column("symbol", "text"),
    Column("t", "timestamptz"),
    Column("o", "double precision"),
    Column("h", "double precision"),
    Column("l", "double precision"),
    Column("c", "double precision"),
    Column("v", "bigint"),
    Column("n", "bigint"),
    Column("vw", "double precision"),
    Column("feed", "text"),
    Column("adjustment", "text"),
)


def bars_table(timeframe: Timeframe) -> TableSpec:
    """The table of one timeframe, registered on first use (the timeframes are configuration)."""
    existing = spec_for(("alpaca", timeframe.table))
    if existing is not None:
        return existing
    spec = TableSpec(
        schema="alpaca",
        name=timeframe.table,
        columns=COLUMNS,
        primary_key=("symbol", "t"),
        partition_column="t",  # a partition is the New York day [00:00, 24:00) of America/New_York
        # merge: a day re-run for added symbols writes only theirs and keeps every other symbol's bars
        write_mode="merge",
        description=f"Alpaca {timeframe.text} stock bars (o, h, l, c, v, n, vw), one row per symbol and bar time, "
        "with the feed and adjustment they were requested with. A day is the New York calendar day of the bar's "
        "timestamp. A ranged run asks for the whole range with as many symbols per request as fit one URL and "
        "commits day by day; symbols added to BACKFILL_ALPACA_SYMBOLS are fetched alone for days already held.",
    )
    register(spec)
    return spec


# The tables of every timeframe the default configuration or 1Min gives, in the order status lists them.
TABLES = tuple(bars_table(tf) for tf in parse_timeframes("1Min,15Min,1Hour,4Hour,1Day"))
