"""The environment, read in one place: when the definitions are built and when an API session starts.

Settings modules hold constants only. Each value is parsed here, and a bad one is one line that names the variable,
the value and the fix (`BACKFILL_BLAZE_START='2023-13-01' is not a date; write YYYY-MM-DD`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backfill_platform.errors import ConfigurationError

T = TypeVar("T")


def source_var(source: str, name: str) -> str:
    """BACKFILL_<SOURCE>_<NAME>, the one spelling of every per-source setting."""
    return f"BACKFILL_{source.upper()}_{name.upper()}"


def read(var: str, default: str, parse: Callable[[str], T], expect: str, environ: Mapping[str, str] | None = None) -> T:
    """`var` parsed from the environment (empty or unset: `default`); `expect` completes "is not …"."""
    raw = (os.environ if environ is None else environ).get(var, "").strip() or default
    try:
        return parse(raw)
    except (ValueError, TypeError, ZoneInfoNotFoundError):
        raise ConfigurationError(f"{var}={raw!r} is not {expect}") from None


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> date:
    """YYYY-MM-DD only: Python 3.11's date.fromisoformat also takes `20240301` and `2024-W10-1`."""
    if not ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    return date.fromisoformat(text)


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_timezone(text: str) -> str:
    if not text or text.startswith("/") or ".." in text:
        raise ValueError(text)
    ZoneInfo(text)
    return text


def parse_int_list(text: str) -> str:
    """A comma list of non-negative integers ("0,1,2"), normalised; empty stays empty."""
    if not text:
        return ""
    values = [int(part) for part in text.split(",")]
    if any(v < 0 for v in values):
        raise ValueError(text)
    return ",".join(str(v) for v in values)


def parse_text(text: str) -> str:
    return text


def base_url(api: str, default: str) -> str:
    """BACKFILL_<API>_BASE_URL, else the API's public origin; checked to be an http(s) URL."""
    var = source_var(api, "base_url")
    url = read(var, default, parse_text, "an http(s) URL")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{var}={url!r} is not an http(s) URL; set it to the API's origin, e.g. https://api.example.com"
        )
    return url


def rate(api: str, default: str) -> str:
    """BACKFILL_<API>_RATE, else the API's default budget (parsed by the budget, which names the variable)."""
    return read(source_var(api, "rate"), default, parse_text, "a rate")


def strict_budget(api: str) -> bool:
    """BACKFILL_<API>_STRICT_BUDGET: slots count from the answer, not from the estimated arrival (default off)."""
    return read(source_var(api, "strict_budget"), "0", parse_bool, "0 or 1")
