"""A request budget shared by every process that uses the same PostgreSQL.

Each window (for example 10,000 calls per 5 minutes) is `limit` slot rows holding the time each slot was last used.
A call claims, in ONE statement, the least recently used slot of every window of its API — only if each of those
slots was last used at least one period ago — so no sliding window ever holds more than `limit` calls, however many
processes or machines share the database. Slots are picked with SKIP LOCKED, so concurrent callers never wait on each
other's row locks, and no lock outlives the statement.

pyrate-limiter's Postgres bucket was measured against this (bench http): it locks the whole table per decision,
rejects rather than waits under contention, and counts every row of the window (10,000 for Blaze) on each call.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from backfill_platform.database import one_row
from backfill_platform.errors import ConfigurationError
from backfill_platform.settings import PLATFORM_SCHEMA

UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Window:
    """At most `limit` calls in any `period_s` seconds."""

    limit: int
    period_s: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.period_s:g}s"


def parse_rate(text: str, setting: str = "rate") -> tuple[Window, ...]:
    """'2/s', '200/min', '7500/5m,10000/5m' → windows. Bad text fails with one line naming the setting."""
    windows = []
    for part in text.split(","):
        m = RATE.match(part.lower())
        if not m or m.group(3) not in UNITS or int(m.group(1)) < 1:
            raise ConfigurationError(
                f"{setting}={text!r} is not a rate; write calls/period such as '2/s', '200/min' or '7500/5m,10000/5m'"
            )
        windows.append(Window(int(m.group(1)), float(m.group(2) or 1) * UNITS[m.group(3)]))
    return tuple(windows)


SCHEMA_SQL = sql.SQL("""
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.budget_slots (
    budget text NOT NULL,
    window_s double precision NOT NULL,
    slot integer NOT NULL,
    used_at timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (budget, window_s, slot)
);
CREATE INDEX IF NOT EXISTS budget_slots_lru ON {schema}.budget_slots (budget, window_s, used_at);
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

# One statement: pick each window's least recently used free-to-lock slot; claim all of them only if every window
# has one that is older than its period (plus a guard for network jitter); otherwise report how long to wait.
CLAIM_SQL = sql.SQL("""
WITH now_ AS (SELECT clock_timestamp() AS t),
windows AS (
    SELECT * FROM unnest(%(periods)s::double precision[], %(guards)s::double precision[]) AS w(window_s, guard_s)
),
oldest AS (
    SELECT w.window_s, w.guard_s, s.slot, s.used_at
    FROM windows w CROSS JOIN LATERAL (
        SELECT slot, used_at FROM {schema}.budget_slots b
        WHERE b.budget = %(budget)s AND b.window_s = w.window_s
        ORDER BY used_at LIMIT 1 FOR UPDATE SKIP LOCKED
    ) s
),
verdict AS (
    SELECT count(*) = %(n)s
           AND bool_and(o.used_at <= now_.t - make_interval(secs => o.window_s + o.guard_s)) AS ok,
           coalesce(max(extract(epoch FROM o.used_at + make_interval(secs => o.window_s + o.guard_s) - now_.t)), 0.005)
               AS wait_s
    FROM oldest o, now_
),
claimed AS (
    UPDATE {schema}.budget_slots b SET used_at = now_.t
    FROM oldest o, verdict v, now_
    WHERE v.ok AND b.budget = %(budget)s AND b.window_s = o.window_s AND b.slot = o.slot
    RETURNING 1
)
SELECT v.ok, v.wait_s, (SELECT count(*) FROM claimed) FROM verdict v
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))


class RateBudget:
    """The cross-process budget of one API; `acquire()` returns once a call is allowed (seconds waited)."""

    def __init__(self, dsn: str, budget: str, windows: tuple[Window, ...], guard_s: float = 0.02) -> None:
        self.dsn, self.budget, self.windows = dsn, budget, windows
        # Sends are spaced by the window; arrivals jitter, so each slot is held a little longer than its period.
        self.guard_s = guard_s
        self._local = threading.local()
        self._params = {
            "budget": budget,
            "periods": [w.period_s for w in windows],
            "guards": [min(guard_s, 0.05 * w.period_s) for w in windows],
            "n": len(windows),
        }
        self._ensure_slots()

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=0)
            self._local.conn = conn
        return conn

    def _ensure_slots(self) -> None:
        """Create the table and give each window exactly `limit` slots (a changed limit takes effect here)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('backfill_platform.budget_slots'))")
            try:
                conn.execute(SCHEMA_SQL)
                s = sql.Identifier(PLATFORM_SCHEMA)
                for w in self.windows:
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {}.budget_slots (budget, window_s, slot) "
                            "SELECT %s, %s, g FROM generate_series(0, %s - 1) g ON CONFLICT DO NOTHING"
                        ).format(s),
                        (self.budget, w.period_s, w.limit),
                    )
                    conn.execute(
                        sql.SQL(
                            "DELETE FROM {}.budget_slots WHERE budget = %s AND window_s = %s AND slot >= %s"
                        ).format(s),
                        (self.budget, w.period_s, w.limit),
                    )
                periods = [w.period_s for w in self.windows]
                conn.execute(
                    sql.SQL("DELETE FROM {}.budget_slots WHERE budget = %s AND NOT window_s = ANY(%s)").format(s),
                    (self.budget, periods),
                )
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('backfill_platform.budget_slots'))")

    def try_acquire(self) -> tuple[bool, float]:
        """One decision: (allowed, seconds until a slot frees up)."""
        ok, wait_s, _ = one_row(self._conn(), CLAIM_SQL, self._params)
        return bool(ok), max(0.0, float(wait_s or 0.0))

    def acquire(self) -> float:
        """Block until this call fits every window; returns the seconds spent waiting."""
        started = time.monotonic()
        while True:
            ok, wait_s = self.try_acquire()
            if ok:
                return time.monotonic() - started
            # Slots held by concurrent claimers report no wait; poll shortly rather than spin.
            time.sleep(min(max(wait_s, 0.002), 5.0))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
