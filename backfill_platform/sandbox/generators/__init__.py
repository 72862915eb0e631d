"""Deterministic data: what a day holds is a pure function of (seed, source, day, revision)."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime


def rng_for(*parts: object) -> random.Random:
    """A generator seeded by its parts; identical in every process (str seeds hash with SHA-512)."""
    return random.Random(":".join(str(p) for p in parts))


def hex_id(nbytes: int, *parts: object) -> str:
    return hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=nbytes).hexdigest()


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_z(moment: datetime) -> str:
    """RFC-3339 with microseconds and Z, the form Scan and Alpaca send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def daily_count(base: float, scale: float, rng: random.Random, spread: float = 0.25) -> int:
    mean = base * scale
    return max(1, int(mean * (1 - spread + 2 * spread * rng.random())))


def day_start_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
