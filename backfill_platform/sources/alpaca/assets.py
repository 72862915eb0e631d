"""Alpaca assets: one per timeframe; a ranged run is one request stream per group of symbols, split into days."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import dagster as dg

from backfill_platform.io_managers.spec import MemberBatches, PartitionBatch
from backfill_platform.resources.apis import AlpacaApi
from backfill_platform.resources.http import share
from backfill_platform.sources.alpaca import settings
from backfill_platform.sources.alpaca.client import AlpacaClient, symbol_groups
from backfill_platform.sources.alpaca.symbols import Timeframe
from backfill_platform.sources.alpaca.tables import bars_table
from backfill_platform.sources.blaze.client import windows
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.fetching import fetched_tables


class BarRow(NamedTuple):
    """One row of alpaca.bars_<tf> (field names are its columns)."""

    symbol: str
    t: datetime
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's own field name
    c: float
    v: int
    n: int | None
    vw: float | None
    feed: str
    adjustment: str


def member(symbol: str, feed: str, adjustment: str) -> str:
    """What the ledger says a day holds: a symbol as fetched with a feed and adjustment (a change refetches it)."""
    return f"{symbol}|{feed}|{adjustment}"


class BarsFetch:
    """One run's fetch of one timeframe: the missing symbols of each pending day in the fewest calls."""

    def __init__(self, context: dg.AssetExecutionContext, api: AlpacaApi, tf: Timeframe, cfg: SourceConfig) -> None:
        self.context, self.tf = context, tf
        self.feed, self.adjustment = cfg["FEED"], cfg["ADJUSTMENT"]
        self.zone = ZoneInfo(cfg.timezone)
        self.max_query, self.buffer = cfg["MAX_QUERY_CHARS"], cfg["BUFFER_BARS"]
        self.session = api.session()
        self.client = AlpacaClient(self.session, self.feed, self.adjustment)
        self.started = datetime.now(UTC)
        self.run_start = self.session.metrics.snapshot()
        self.by_member = {member(s, self.feed, self.adjustment): s for s in cfg["SYMBOLS"]}
        self.floor = 0
        self.groups = 0

    def midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone)

    def produce(self, missing: Mapping[str, Sequence[str]]) -> Iterator[PartitionBatch]:
        """Days lacking the same symbols are fetched together (a fresh run: every day lacks every symbol)."""
        by_symbols: dict[tuple[str, ...], list[date]] = {}
        for key, lacking in missing.items():
            symbols = tuple(sorted(self.by_member[m] for m in lacking if m in self.by_member))
            by_symbols.setdefault(symbols, []).append(date.fromisoformat(key))
        for symbols, days in by_symbols.items():
            max_days = max(1, self.buffer // (len(symbols) * self.tf.bars_per_day))
            for chunk in windows(sorted(days), max_days):  # consecutive days, at most max_days a chunk
                yield from self.chunk(list(symbols), chunk)

    def chunk(self, symbols: list[str], days: list[date]) -> Iterator[PartitionBatch]:
        """The whole chunk per symbol group, then each day: pages are symbol-major, so a day is complete only
        when every group's stream has ended."""
        start, end = self.midnight(days[0]), self.midnight(days[-1] + timedelta(days=1)) - timedelta(seconds=1)
        base = self.client.params([], self.tf.text, start, end)
        groups = symbol_groups(symbols, base, self.max_query)
        rows: dict[date, list[BarRow]] = {day: [] for day in days}
        with_bars: dict[date, set[str]] = {day: set() for day in days}
        when: dict[str, tuple[datetime, date]] = {}  # bar times repeat across symbols: parse each once
        before = self.session.metrics.snapshot()
        stray = 0
        for group in groups:
            got = 0
            for page in self.client.bars(group, self.tf.text, start, end):
                for symbol, bars in page.items():
                    got += len(bars)
                    for b in bars:
                        hit = when.get(b["t"])
                        if hit is None:
                            t = datetime.fromisoformat(b["t"])
                            hit = when[b["t"]] = (t, t.astimezone(self.zone).date())
                        day_rows = rows.get(hit[1])
                        if day_rows is None:
                            stray += 1
                            continue
                        day_rows.append(
                            BarRow(
                                symbol,
                                hit[0],
                                b["o"],
                                b["h"],
                                b["l"],
                                b["c"],
                                b["v"],
                                b.get("n"),
                                b.get("vw"),
                                self.feed,
                                self.adjustment,
                            )
                        )
                        with_bars[hit[1]].add(symbol)
            self.floor += max(1, math.ceil(got / settings.MAX_LIMIT))  # a stream with no bars still takes its call
        self.groups += len(groups)
        if stray:
            self.context.log.warning(f"{stray} {self.tf.text} bars fell outside {days[0]}..{days[-1]}; not stored")
        cost = self.session.metrics.since(before)
        calls = share(int(cost["calls"]), [len(r) for r in rows.values()])
        for (day, day_rows), day_calls in zip(rows.items(), calls, strict=True):
            # A day still in progress is stored but not recorded as held: the next run fetches it again.
            settled = self.midnight(day + timedelta(days=1)) <= self.started
            yield PartitionBatch(
                day.isoformat(),
                day_rows,
                columns=BarRow._fields,
                members=tuple(member(s, self.feed, self.adjustment) for s in symbols) if settled else None,
                metadata={
                    "api_calls": day_calls,
                    "symbols_requested": len(symbols),
                    "symbols_with_bars": len(with_bars[day]),
                    "chunk": f"{days[0]}..{days[-1]}",
                    "chunk_api_calls": int(cost["calls"]),
                    "chunk_symbol_groups": len(groups),
                    "chunk_429s": int(cost["http_429"]),
                    "chunk_budget_wait_s": cost["budget_wait_s"],
                },
            )

    def summary(self) -> dict[str, Any]:
        spent = self.session.metrics.since(self.run_start)
        calls = int(spent["calls"])
        return {
            **{f"api_{k}": v for k, v in spent.items()},
            "symbol_groups": self.groups,
            "call_floor": self.floor,
            "calls_per_floor": round(calls / self.floor, 3) if self.floor else 0.0,
        }


def fetch_bars(context: dg.AssetExecutionContext, api: AlpacaApi, tf: Timeframe, cfg: SourceConfig) -> MemberBatches:
    fetch = BarsFetch(context, api, tf, cfg)
    return MemberBatches(list(fetch.by_member), fetch.produce, summary=fetch.summary)


def build(config: SourceConfig, partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    def one(tf: Timeframe) -> dg.AssetsDefinition:
        return fetched_tables(
            source="alpaca",
            parent=bars_table(tf),
            partitions_def=partitions,
            fetch=lambda context, api: fetch_bars(context, api, tf, config),
        )

    return [one(tf) for tf in config["TIMEFRAMES"]]
