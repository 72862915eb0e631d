"""Alpaca calls benchmark: calls made ÷ the floor, for this platform and for the replaced method, in one run.

The floor is Σ over the symbol groups of ⌈bars ÷ 10,000⌉ (a group: as many symbols as fit one request's query
string; a group without bars still takes its one call). The replaced method sent one request stream per 50 symbols
(here over the whole range, following page tokens: its best case). A third run under a deliberately small budget is
rate-bound and reports the achieved ÷ allowed request rate, measured on the sandbox's arrival times.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import AlpacaApi
from backfill_platform.resources.budget import parse_rate
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import alpaca as truth
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.alpaca import settings
from backfill_platform.sources.alpaca.client import AlpacaClient, symbol_groups

NY = ZoneInfo("America/New_York")
REPLACED_GROUP = 50
ROUTE = "alpaca stocks/bars"


@dataclass
class Scenario:
    name: str
    symbols: int
    days: int
    timeframe: str
    bars: int
    groups: int
    floor: int
    calls: int
    seconds: float
    replaced_calls: int
    replaced_seconds: float

    def line(self) -> str:
        return (
            f"{self.name}: {self.bars:,} bars; this platform {self.calls} calls in {self.groups} symbol groups, "
            f"floor {self.floor}, calls ÷ floor {self.calls / self.floor:.2f} ({self.seconds:.1f} s end to end); "
            f"replaced method (one request stream per {REPLACED_GROUP} symbols) {self.replaced_calls} calls, "
            f"calls ÷ floor {self.replaced_calls / self.floor:.2f} ({self.replaced_seconds:.1f} s)"
        )


@dataclass
class RateBound:
    rate: str
    calls: int
    seconds: float
    achieved_per_s: float
    allowed_per_s: float

    def line(self) -> str:
        return (
            f"rate-bound run under {self.rate}: {self.calls} calls in {self.seconds:.1f} s, achieved "
            f"{self.achieved_per_s:.3f}/s of {self.allowed_per_s:.3f}/s allowed = "
            f"{self.achieved_per_s / self.allowed_per_s:.2f}"
        )


@dataclass
class AlpacaBenchResult:
    scenarios: list[Scenario]
    rate_bound: RateBound | None

    def report(self) -> str:
        lines = [s.line() for s in self.scenarios]
        if self.rate_bound is not None:
            lines.append(self.rate_bound.line())
        return "\n".join(lines)


def _calls(origin: str) -> int:
    return httpx.get(f"{origin}/_sandbox/stats").json()["routes"].get(ROUTE, {}).get("requests", 0)


def _api(origin: str, rate: str) -> AlpacaApi:
    cfg = SandboxConfig()
    return AlpacaApi(base_url=f"{origin}/alpaca", rate=rate, key_id=cfg.alpaca_key_id, secret_key=cfg.alpaca_secret_key)


def _platform_run(dsn: str, origin: str, watchlist: Path, tf: str, first: date, last: date, rate: str) -> float:
    from backfill_platform.sources import load, named

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS alpaca CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    source = named("alpaca", load({"BACKFILL_ALPACA_SYMBOLS": f"@{watchlist}", "BACKFILL_ALPACA_TIMEFRAMES": tf}))
    resources = {"alpaca": _api(origin, rate), "io_manager": PostgresIOManager(database_url=dsn)}
    started = time.perf_counter()
    result = dg.materialize(
        list(source.assets), resources=resources, tags={RANGE_START_TAG: str(first), RANGE_END_TAG: str(last)}
    )
    assert result.success
    return time.perf_counter() - started


def _stored_per_symbol(dsn: str, tf: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(f"SELECT symbol, count(*) FROM alpaca.bars_{tf.lower()} GROUP BY 1").fetchall())


def _window(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=NY)
    end = datetime(last.year, last.month, last.day, tzinfo=NY) + timedelta(days=1) - timedelta(seconds=1)
    return start, end


def _scenario(dsn: str, origin: str, name: str, symbols: tuple[str, ...], tf: str, first: date, days: int) -> Scenario:
    last = first + timedelta(days=days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        watchlist = Path(tmp) / "watchlist.txt"
        watchlist.write_text("\n".join(symbols))
        before = _calls(origin)
        seconds = _platform_run(dsn, origin, watchlist, tf, first, last, AlpacaApi.DEFAULT_RATE)
        calls = _calls(origin) - before
    per_symbol = _stored_per_symbol(dsn, tf)
    expected = sum(
        len(truth.bars(7, s, *(t.astimezone(UTC) for t in _window(first, last)), _tf(tf))) for s in symbols[:5]
    )
    assert sum(per_symbol.get(s, 0) for s in symbols[:5]) == expected  # spot check against the ground truth
    start, end = _window(first, last)
    client = AlpacaClient(_api(origin, AlpacaApi.DEFAULT_RATE).session(), "iex", "raw")
    groups = symbol_groups(sorted(symbols), client.params([], tf, start, end), int(settings.MAX_QUERY_CHARS))
    floor = sum(max(1, math.ceil(sum(per_symbol.get(s, 0) for s in g) / settings.MAX_LIMIT)) for g in groups)
    # The replaced method, against the same sandbox and budget: one request stream per 50 symbols.
    before, started = _calls(origin), time.perf_counter()
    ordered = sorted(symbols)
    for i in range(0, len(ordered), REPLACED_GROUP):
        for _page in client.bars(ordered[i : i + REPLACED_GROUP], tf, start, end):
            pass
    replaced_seconds = time.perf_counter() - started
    replaced = _calls(origin) - before
    client.session.close()
    return Scenario(
        name,
        len(symbols),
        days,
        tf,
        sum(per_symbol.values()),
        len(groups),
        floor,
        calls,
        seconds,
        replaced,
        replaced_seconds,
    )


def _tf(text: str) -> truth.Timeframe:
    tf = truth.parse_timeframe(text)
    assert tf is not None
    return tf


def _rate_bound(dsn: str, origin: str, symbols: tuple[str, ...], first: date, days: int, rate: str) -> RateBound:
    """The 1Min scenario again under a small budget: steady-state arrivals ÷ the budget's rate."""
    (window,) = parse_rate(rate, "rate")
    with tempfile.TemporaryDirectory() as tmp:
        watchlist = Path(tmp) / "watchlist.txt"
        watchlist.write_text("\n".join(symbols))
        httpx.post(f"{origin}/_sandbox/reset").raise_for_status()
        seconds = _platform_run(dsn, origin, watchlist, "1Min", first, first + timedelta(days=days - 1), rate)
    times = httpx.get(f"{origin}/_sandbox/arrivals/alpaca").json()["arrivals"]
    # The first `limit` calls may go at once; after them each period admits `limit` more.
    paced = len(times) - window.limit
    achieved = paced / (times[-1] - times[0]) if paced > 0 and times[-1] > times[0] else 0.0
    return RateBound(rate, len(times), seconds, achieved, window.limit / window.period_s)


def run(
    dsn: str,
    symbols: int = 5_000,
    days: int = 30,
    minute_symbols: int = 50,
    minute_days: int = 5,
    first: str = "2024-04-01",
    bound_rate: str | None = "2/10s",
) -> AlpacaBenchResult:
    start = date.fromisoformat(first)
    universe = truth.universe(symbols)
    with SandboxProcess(SandboxConfig(alpaca_symbols=max(symbols, minute_symbols))) as sandbox:
        scenarios = [
            _scenario(dsn, sandbox.origin, f"{symbols:,} symbols × {days} days of 1Day", universe, "1Day", start, days),
            _scenario(
                dsn,
                sandbox.origin,
                f"{minute_symbols} symbols × {minute_days} days of 1Min",
                universe[:minute_symbols],
                "1Min",
                start,
                minute_days,
            ),
        ]
        bound = None
        if bound_rate:
            bound = _rate_bound(dsn, sandbox.origin, universe[:minute_symbols], start, minute_days, bound_rate)
    return AlpacaBenchResult(scenarios, bound)
