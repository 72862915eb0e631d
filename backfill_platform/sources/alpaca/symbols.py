"""The source's settings that need parsing: the symbol universe, the timeframes, and enumerations."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,9}(?:[./][A-Z0-9]{1,4})?$")
TIMEFRAME = re.compile(r"^(?:([1-9]|[1-5][0-9])Min|([1-9]|1[0-9]|2[0-3])Hour|(1)Day)$")


@dataclass(frozen=True, order=True)
class Timeframe:
    """An intraday or daily Alpaca timeframe: daily partitions hold whole days, so Week and Month do not fit."""

    minutes: int
    text: str  # as Alpaca spells it: 15Min, 1Hour, 1Day

    @property
    def table(self) -> str:
        return f"bars_{self.text.lower()}"

    @property
    def bars_per_day(self) -> int:
        """An upper estimate of one symbol's bars on a day (04:00–20:00 trading), for sizing chunks of days."""
        return 1 if self.minutes >= 1440 else -(-960 // self.minutes) + 1


def parse_timeframes(text: str) -> tuple[Timeframe, ...]:
    """`1Min,15Min,1Hour,4Hour,1Day` → timeframes, de-duplicated, shortest first."""
    out = set()
    for part in (p.strip() for p in text.split(",")):
        m = TIMEFRAME.match(part)
        if not m:
            raise ValueError(part)
        minutes = int(m.group(1)) if m.group(1) else int(m.group(2)) * 60 if m.group(2) else 1440
        out.add(Timeframe(minutes, part))
    if not out:
        raise ValueError(text)
    return tuple(sorted(out))


def parse_symbols(text: str) -> tuple[str, ...]:
    """A comma list (`AAPL,MSFT`) or `@path` to a file of one symbol a line (# comments, blank lines allowed);
    upper-cased, de-duplicated and sorted (Alpaca answers symbol-major in that order)."""
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).expanduser().read_text().splitlines()
        except OSError:
            raise ValueError(text) from None
        parts = [line.split("#", 1)[0] for line in lines]
    else:
        parts = text.split(",")
    symbols = sorted({p.strip().upper() for p in parts if p.strip()})
    if not symbols or any(not SYMBOL.match(s) for s in symbols):
        raise ValueError(text)
    return tuple(symbols)


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(text)
        return text.lower()

    return parse


def parse_share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(text)
    return value
