"""The request budget in PostgreSQL: windows parsed from settings, shared by processes, never exceeded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from backfill_platform.errors import ConfigurationError
from backfill_platform.resources.budget import ArrivalEstimate, RateBudget, Window, parse_rate


def test_parse_rate() -> None:
    assert parse_rate("2/s") == (Window(2, 1.0),)
    assert parse_rate("7500/5m,10000/5m") == (Window(7500, 300.0), Window(10000, 300.0))
    assert parse_rate("200/min") == (Window(200, 60.0),)
    with pytest.raises(ConfigurationError, match="BACKFILL_RACING_RATE='fast'"):
        parse_rate("fast", "BACKFILL_RACING_RATE")


def test_every_window_must_have_room(db_url: str) -> None:
    budget = RateBudget(db_url, "two-windows", (Window(3, 1.0), Window(4, 60.0)))
    decisions = [budget.try_acquire()[0] for _ in range(5)]
    assert decisions == [True, True, True, False, False]  # the 1 s window is full after three
    with psycopg.connect(db_url) as conn:
        used = conn.execute(
            "SELECT window_s, count(*) FILTER (WHERE used_at > '-infinity') FROM backfill_platform.budget_slots "
            "WHERE budget = 'two-windows' GROUP BY window_s ORDER BY window_s"
        ).fetchall()
    assert used == [(1.0, 3), (60.0, 3)]  # a refused call claims nothing in either window


def test_changed_limit_resizes_slots(db_url: str) -> None:
    RateBudget(db_url, "resize", (Window(5, 1.0),))
    RateBudget(db_url, "resize", (Window(2, 1.0),))
    with psycopg.connect(db_url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM backfill_platform.budget_slots WHERE budget = 'resize'").fetchone()[0]
            == 2
        )


def test_processes_share_one_budget(db_url: str) -> None:
    """Three processes race for a 10-per-minute window: exactly 10 calls are granted in total."""
    code = textwrap.dedent(f"""
        from backfill_platform.resources.budget import RateBudget, Window
        b = RateBudget({db_url!r}, "shared", (Window(10, 60.0),))
        print(sum(b.try_acquire()[0] for _ in range(8)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    granted = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(granted) == 10


def test_the_arrival_estimate_waits_for_its_calls_then_takes_back_the_floor_of_the_round_trips() -> None:
    estimate = ArrivalEstimate(margin_s=0.01)
    steady = [0.100 + 0.001 * (i % 7) for i in range(ArrivalEstimate.WARMUP - 1)]
    assert [estimate.head_start(rt) for rt in steady] == [0.0] * len(steady)  # warming up: stamped at the answer
    head = estimate.head_start(0.105)
    assert 0.07 < head < 0.09  # the fastest (0.100) less 6 x the spacing of the 5 fastest (~0.001) less the margin
    # One answer far faster than all others (a way in faster than ever seen): the fastest round trips are now spread
    # out, and nothing is taken back.
    assert estimate.head_start(0.002) == 0.0
    assert estimate.head_start(0.105) == 0.0


def test_each_route_learns_its_own_round_trips(db_url: str) -> None:
    """A quick route (the list of regions) must not hide what a slow one (a 100-race page) spends after arriving."""
    budget = RateBudget(db_url, "routes", (Window(1000, 1.0),))
    for _ in range(3):
        budget.release(budget.acquire(), "/fast")
    heads = []
    for _ in range(ArrivalEstimate.WARMUP):
        claim = budget.acquire()
        time.sleep(0.05)
        heads.append(budget.release(claim, "/slow"))
    assert heads[:-1] == [0.0] * (ArrivalEstimate.WARMUP - 1)
    assert 0.02 < heads[-1] < 0.05
