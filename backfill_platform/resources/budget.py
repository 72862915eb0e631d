"""A request budget shared by every process that uses the same PostgreSQL.

Each window (for example 10,000 calls per 5 minutes) is `limit` slot rows holding the time each slot was last used.
A call claims, in ONE statement, the least recently used slot of every window of its API — only if each of those
slots was last used at least one period ago — and marks them in flight (stamped `lease_s` ahead). When the answer has
arrived or the request failed, `release()` re-stamps them, in one statement, with the moment the call had surely
reached the server. The server counts a call when it ARRIVES, which is between its claim and its answer; stamping at
the claim let a slow arrival and a fast one land less than a period apart (measured: 34 arrivals in a 3 s window of a
30-per-3 s budget with 0-200 ms of latency). Stamping at the answer makes a slot's next arrival at least one period
after its previous one, so no sliding window the SERVER sees holds more than `limit` calls, whatever the latency and
however many processes or machines share the database — but each slot then idles for a round trip every period (at
2/s with 40-70 ms answers: 0.93 of the rate). `ArrivalEstimate` takes back the part of the round trip that every call
spends after arriving (see there); `BACKFILL_<API>_STRICT_BUDGET=1` stamps at the answer. A call whose process dies
in flight frees its slot `lease_s` + one period after its claim. Slots are picked with SKIP LOCKED, so concurrent
callers never wait on each other's row locks, and no lock outlives the statement.

pyrate-limiter's Postgres bucket was measured against this (bench http): it locks the whole table per decision,
rejects rather than waits under contention, and counts every row of the window (10,000 for Blaze) on each call.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg
from psycopg import sql

from backfill_platform.database import one_row
from backfill_platform.errors import ConfigurationError
from backfill_platform.settings import PLATFORM_SCHEMA

# The HTTP path's logger: dagster.yaml manages it, so a warning lands in the run's log too.
log = logging.getLogger("backfill_platform.http")

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

# One statement: pick each window's least recently used free-to-lock slot; claim all of them (stamped lease_s ahead:
# in flight) only if every window has one that is older than its period plus a guard; otherwise report how long to
# wait (a period at least when every slot is in flight, since none can be free sooner than a period after completion).
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
           coalesce(max(extract(epoch FROM
               least(o.used_at, now_.t) + make_interval(secs => o.window_s + o.guard_s) - now_.t)), 0.005) AS wait_s
    FROM oldest o, now_
),
claimed AS (
    UPDATE {schema}.budget_slots b SET used_at = now_.t + make_interval(secs => %(lease_s)s)
    FROM oldest o, verdict v, now_
    WHERE v.ok AND b.budget = %(budget)s AND b.window_s = o.window_s AND b.slot = o.slot
    RETURNING b.window_s, b.slot, b.used_at
)
SELECT v.ok, v.wait_s, c.periods, c.slots, c.stamp
FROM verdict v, (
    SELECT array_agg(window_s ORDER BY window_s) AS periods, array_agg(slot ORDER BY window_s) AS slots,
           min(used_at) AS stamp
    FROM claimed
) c
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

# The call is over: its slots count from `head_s` before now (the server had counted the call by then). Only slots
# still carrying this claim's in-flight stamp: one whose lease ran out may already serve another call.
RELEASE_SQL = sql.SQL("""
UPDATE {schema}.budget_slots b SET used_at = clock_timestamp() - make_interval(secs => %(head_s)s)
FROM unnest(%(periods)s::double precision[], %(slots)s::integer[]) AS c(window_s, slot)
WHERE b.budget = %(budget)s AND b.window_s = c.window_s AND b.slot = c.slot AND b.used_at = %(stamp)s
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))


@dataclass(frozen=True)
class Claim:
    """The slots (one per window) a call holds until `RateBudget.release` re-stamps them with its completion."""

    periods: tuple[float, ...]
    slots: tuple[int, ...]
    stamp: datetime  # the in-flight mark the claim wrote
    waited_s: float = 0.0  # seconds `acquire()` waited for it
    claimed_at: float = field(default_factory=time.monotonic)  # when the call could start: its round trip's start


class ArrivalEstimate:
    """How long before its answer a call had surely reached the server, learnt from one process's round trips.

    One per route. A round trip is the way in (d) plus the time from arrival to the headers of the answer (q). The
    slot's next call arrives at least d_min after its claim, and this call arrived no later than q_min before its
    answer; so stamping the slot at (answer − head) keeps the slot's arrivals a period apart whenever
    head ≤ d_min + q_min, the floor of the round trips. The floor is estimated from the fastest `KEPT` round trips
    seen: the fastest, less `SPREAD` times their mean spacing (the lower end of a distribution read from its smallest
    order statistics), less `margin_s`; and only after `WARMUP` calls. Until then the head start is 0: stamping at
    the answer.

    Chosen by simulation (0-200 ms of jitter on the way in, the test_budget_at_server case: no window over in 5,000
    runs; 40-70 ms answers at 2/s: 0.965 of the rate). What it assumes: the fastest way in seen so far is as fast as
    it gets. A network whose way in is sometimes much faster than it has ever been (1 % of calls 100 ms quicker than
    all others) can put a call into a window early; the server's 429 is then retried after its Retry-After, and
    `BACKFILL_<API>_STRICT_BUDGET=1` rules it out.
    """

    WARMUP = 20
    KEPT = 5
    SPREAD = 6.0

    def __init__(self, margin_s: float) -> None:
        self.margin_s = margin_s
        self._fastest: list[float] = []
        self._seen = 0
        self._lock = threading.Lock()

    def head_start(self, round_trip_s: float) -> float:
        """Learn this round trip; the seconds its slot may count from before its answer (at most the fastest round
        trip, this one included, so never more than it took)."""
        with self._lock:
            bisect.insort(self._fastest, round_trip_s)
            del self._fastest[self.KEPT :]
            self._seen += 1
            if self._seen < self.WARMUP or len(self._fastest) < self.KEPT:
                return 0.0
            fastest, spacing = self._fastest[0], (self._fastest[-1] - self._fastest[0]) / (self.KEPT - 1)
        return max(0.0, fastest - self.SPREAD * spacing - self.margin_s)


class RateBudget:
    """The cross-process budget of one API: `acquire()` returns a Claim once a call is allowed, `release(claim)`
    when the call is over (answered or failed)."""

    def __init__(
        self,
        dsn: str,
        budget: str,
        windows: tuple[Window, ...],
        guard_s: float = 0.005,
        lease_s: float = 60.0,
        strict: bool = False,
    ) -> None:
        self.dsn, self.budget, self.windows = dsn, budget, windows
        # Strict: slots count from the answer. Otherwise from the estimated arrival, learnt per route (a 100-race
        # results page takes longer to answer than the list of regions), with a margin of 1 % of the shortest period
        # on top of the estimate's own.
        self.strict = strict
        self._margin_s = 0.01 * min(w.period_s for w in windows)
        self._arrivals: dict[str, ArrivalEstimate] = {}
        self._arrivals_lock = threading.Lock()
        # Each slot is held a little longer than its period: a margin on top of the completion stamp.
        self.guard_s = guard_s
        # How long a claimed slot counts as in flight if it is never released (its process died).
        self.lease_s = lease_s
        self._local = threading.local()
        self._params = {
            "budget": budget,
            "periods": [w.period_s for w in windows],
            "guards": [min(guard_s, 0.05 * w.period_s) for w in windows],
            "n": len(windows),
            "lease_s": lease_s,
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

    def claim(self) -> tuple[Claim | None, float]:
        """One decision: the claimed slots (None when refused) and the seconds until a slot frees up."""
        ok, wait_s, periods, slots, stamp = one_row(self._conn(), CLAIM_SQL, self._params)
        wait = max(0.0, float(wait_s or 0.0))
        return (Claim(tuple(periods), tuple(slots), stamp) if ok else None), wait

    def try_acquire(self) -> tuple[bool, float]:
        """One decision: (allowed, seconds until a slot frees up). Unreleased, the slots stay in flight `lease_s`."""
        claim, wait = self.claim()
        return claim is not None, wait

    def acquire(self) -> Claim:
        """Block until this call fits every window; the Claim says how long that took (`waited_s`)."""
        started = time.monotonic()
        while True:
            claim, wait_s = self.claim()
            if claim is not None:
                return replace(claim, waited_s=time.monotonic() - started)
            # Slots held by concurrent claimers report no wait; poll shortly rather than spin.
            time.sleep(min(max(wait_s, 0.002), 5.0))

    def arrivals(self, route: str) -> ArrivalEstimate:
        with self._arrivals_lock:
            return self._arrivals.setdefault(route, ArrivalEstimate(self._margin_s))

    def release(self, claim: Claim, route: str = "") -> float:
        """The call to `route` is over (answered, refused or failed): its slots count from its estimated arrival, in
        one statement; returns how long before now that is. Never raises: an unreleased slot is only held longer
        (until its lease ends), never too short."""
        round_trip_s = time.monotonic() - claim.claimed_at
        head_s = 0.0 if self.strict else self.arrivals(route).head_start(round_trip_s)
        params = {"budget": self.budget, "periods": list(claim.periods), "slots": list(claim.slots), "head_s": head_s}
        try:
            self._conn().execute(RELEASE_SQL, {**params, "stamp": claim.stamp})
            return head_s
        except psycopg.Error as exc:
            log.warning(
                "%s budget: could not release a slot (%s); it stays held until its %.0f s lease ends",
                self.budget,
                exc,
                self.lease_s,
            )
            return 0.0

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
