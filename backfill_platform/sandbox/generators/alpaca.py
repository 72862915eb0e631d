"""Alpaca stock bars: minute bars of the regular session plus sparse pre-market (04:00) and after-hours (to 20:00
New York) trading, aggregated to any coarser timeframe; weekends and NYSE holidays have none."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from backfill_platform.sandbox.generators import rng_for

NEW_YORK = ZoneInfo("America/New_York")
TICKERS = (
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "META",
    "TSLA",
    "BRK.B",
    "JPM",
    "V",
    "UNH",
    "XOM",
    "JNJ",
    "WMT",
    "MA",
    "PG",
    "HD",
    "CVX",
    "MRK",
    "ABBV",
    "KO",
    "PEP",
    "AVGO",
    "COST",
    "ADBE",
    "CRM",
    "NFLX",
    "AMD",
    "INTC",
    "ORCL",
    "CSCO",
    "TMO",
    "ACN",
    "MCD",
    "DIS",
    "NKE",
    "QCOM",
    "TXN",
    "IBM",
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
)
TIMEFRAME = re.compile(
    r"^(?:([1-9]|[1-5][0-9])(?:Min|T)|([1-9]|1[0-9]|2[0-3])(?:Hour|H)|1(?:Day|D)|1(?:Week|W)|"
    r"(1|2|3|6|12)(?:Month|M))$"
)
SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[./][A-Z]{1,2})?$")


@dataclass(frozen=True)
class Timeframe:
    unit: str  # "Min", "Hour", "Day", "Week", "Month"
    amount: int

    @property
    def letter(self) -> str:
        return {"Min": "T", "Hour": "H", "Day": "D", "Week": "W", "Month": "M"}[self.unit]


def parse_timeframe(text: str) -> Timeframe | None:
    m = TIMEFRAME.match(text)
    if not m:
        return None
    if m.group(1):
        return Timeframe("Min", int(m.group(1)))
    if m.group(2):
        return Timeframe("Hour", int(m.group(2)))
    if m.group(3):
        return Timeframe("Month", int(m.group(3)))
    return Timeframe("Week" if "W" in text else "Day", 1)


def universe(count: int = len(TICKERS)) -> tuple[str, ...]:
    """The symbols that have data: real tickers first, then synthetic ones (ZAAA, ZAAB, …) for scale."""
    extra = max(0, count - len(TICKERS))
    synthetic = tuple("Z" + "".join(chr(65 + (i // 26**k) % 26) for k in (2, 1, 0)) for i in range(extra))
    return (TICKERS + synthetic)[:count] if count >= 0 else TICKERS


# NYSE full-day closures the sandbox knows (2024–2025): no bars at all on these days.
HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        "2024-01-01",
        "2024-01-15",
        "2024-02-19",
        "2024-03-29",
        "2024-05-27",
        "2024-06-19",
        "2024-07-04",
        "2024-09-02",
        "2024-11-28",
        "2024-12-25",
        "2025-01-01",
        "2025-01-09",
        "2025-01-20",
        "2025-02-17",
        "2025-04-18",
        "2025-05-26",
        "2025-06-19",
        "2025-07-04",
        "2025-09-01",
        "2025-11-27",
        "2025-12-25",
    )
)
PRE_MARKET, AFTER_HOURS = 330, 240  # minutes before 09:30 and after 16:00 with (sparse) extended-hours trading
EXTENDED_SHARE = 0.08  # of extended-hours minutes that have a bar


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def _extended(seed: int, symbol: str, day: date, session: np.ndarray) -> np.ndarray:
    """Sparse extended-hours rows (minute < 0 before the open, >= 390 after the close) near the session's prices."""
    rng = np.random.default_rng(int.from_bytes(rng_for(seed, "alpaca-ext", symbol, day).randbytes(8), "little"))
    minutes = np.concatenate([np.arange(-PRE_MARKET, 0), np.arange(390, 390 + AFTER_HOURS)])
    minutes = minutes[rng.random(len(minutes)) < EXTENDED_SHARE]
    anchor = np.where(minutes < 0, session[0, 1], session[-1, 4])
    opens = anchor * np.exp(rng.normal(0, 0.001, len(minutes)))
    closes = opens * np.exp(rng.normal(0, 0.0006, len(minutes)))
    highs = np.maximum(opens, closes) * (1 + np.abs(rng.normal(0, 0.0004, len(minutes))))
    lows = np.minimum(opens, closes) * (1 - np.abs(rng.normal(0, 0.0004, len(minutes))))
    volume = rng.integers(1, 2_000, len(minutes))
    trades = np.maximum(1, volume // rng.integers(20, 200, len(minutes)))
    vwap = (highs + lows + closes) / 3
    return np.round(np.column_stack([minutes, opens, highs, lows, closes, volume, trades, vwap]), 4)


@lru_cache(maxsize=4096)
def minute_bars(seed: int, symbol: str, day: date) -> np.ndarray:
    """(minute_of_session, o, h, l, c, v, n, vw) rows for 09:30–16:00 New York; some quiet minutes have no bar.
    Daily bars aggregate these (the regular session); intraday bars also hold the extended hours (day_minutes)."""
    if not is_trading_day(day):
        return np.zeros((0, 8))
    rng = np.random.default_rng(int.from_bytes(rng_for(seed, "alpaca", symbol, day).randbytes(8), "little"))
    base = 20 + (sum(map(ord, symbol)) * 7919 % 480)
    opens = base * np.exp(np.cumsum(rng.normal(0, 0.0008, 390)))
    closes = opens * np.exp(rng.normal(0, 0.0006, 390))
    highs = np.maximum(opens, closes) * (1 + np.abs(rng.normal(0, 0.0004, 390)))
    lows = np.minimum(opens, closes) * (1 - np.abs(rng.normal(0, 0.0004, 390)))
    volume = rng.integers(100, 50_000, 390)
    trades = np.maximum(1, volume // rng.integers(20, 200, 390))
    vwap = (highs + lows + closes) / 3
    keep = rng.random(390) > 0.05
    rows = np.column_stack([np.arange(390), opens, highs, lows, closes, volume, trades, vwap])[keep]
    return np.round(rows, 4)


@lru_cache(maxsize=4096)
def day_minutes(seed: int, symbol: str, day: date) -> np.ndarray:
    """Every minute row of the day, pre-market, session and after-hours, ascending."""
    session = minute_bars(seed, symbol, day)
    if len(session) == 0:
        return session
    rows = np.vstack([session, _extended(seed, symbol, day, session)])
    return rows[np.argsort(rows[:, 0], kind="stable")]


def _session_open_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK).astimezone(UTC)


def _ny_midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).astimezone(UTC)


def _bar(t: datetime, rows: np.ndarray) -> dict:
    volume = int(rows[:, 5].sum())
    return {
        "t": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": float(rows[0, 1]),
        "h": float(rows[:, 2].max()),
        "l": float(rows[:, 3].min()),
        "c": float(rows[-1, 4]),
        "v": volume,
        "n": int(rows[:, 6].sum()),
        "vw": round(float((rows[:, 7] * rows[:, 5]).sum() / volume), 4) if volume else float(rows[-1, 4]),
    }


def bars_for_day(seed: int, symbol: str, day: date, timeframe: Timeframe) -> list[dict]:
    """Bars of one symbol on one trading day (Min/Hour/Day), ascending by time."""
    if timeframe.unit == "Day":
        session = minute_bars(seed, symbol, day)
        return [_bar(_ny_midnight_utc(day), session)] if len(session) else []
    rows = day_minutes(seed, symbol, day)
    if len(rows) == 0:
        return []
    open_utc = _session_open_utc(day)
    minutes = rows[:, 0].astype(int)
    if timeframe.unit == "Min":
        bucket = (minutes // timeframe.amount) * timeframe.amount
        starts = [open_utc + timedelta(minutes=int(b)) for b in np.unique(bucket)]
    else:  # hour bars align to New York clock hours from midnight (the 09:00 bar holds 09:30–10:00)
        width = 60 * timeframe.amount
        bucket = (minutes + 570) // width * width - 570
        starts = [open_utc + timedelta(minutes=int(b)) for b in np.unique(bucket)]
    return [_bar(t, rows[bucket == b]) for t, b in zip(starts, np.unique(bucket), strict=True)]


def bars(seed: int, symbol: str, start: datetime, end: datetime, timeframe: Timeframe) -> list[dict]:
    """Bars with start <= t <= end (both inclusive, as the API filters)."""
    lo, hi = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[dict] = []
    day = (start - timedelta(days=1)).date()
    if timeframe.unit in ("Week", "Month"):
        return _calendar_bars(seed, symbol, start, end, timeframe)
    while day <= end.date():
        out.extend(b for b in bars_for_day(seed, symbol, day, timeframe) if lo <= b["t"] <= hi)
        day += timedelta(days=1)
    return out


def _calendar_bars(seed: int, symbol: str, start: datetime, end: datetime, timeframe: Timeframe) -> list[dict]:
    groups: dict[date, list[np.ndarray]] = {}
    day = start.date()
    while day <= end.date():
        rows = minute_bars(seed, symbol, day)
        if len(rows):
            key = day - timedelta(days=day.weekday()) if timeframe.unit == "Week" else day.replace(day=1)
            groups.setdefault(key, []).append(rows)
        day += timedelta(days=1)
    return [_bar(_ny_midnight_utc(k), np.vstack(v)) for k, v in sorted(groups.items())]
