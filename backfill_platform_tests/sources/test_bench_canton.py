"""Benchmark: Canton updates + events end to end against the sandbox, one run (marker `benchmark`).

The issue's goal is 100k rows/s. On this 2-core machine the simulator, the run and PostgreSQL share the cores, and
raw COPY of the same rows into unlogged, index-free tables is itself below the goal (see the README); the printout
gives both ratios. The assertions guard against regressions.
"""

import pytest

from benchmarks import canton


@pytest.mark.benchmark
def test_canton_end_to_end_rows_per_second(db_url: str) -> None:
    result = canton.run(db_url, days=10, scale=10.0)
    print("\n" + result.report())
    assert result.updates > 90_000 and result.events > 3 * result.updates
    assert result.rows_s >= 25_000
    # raw COPY is timed after a CHECKPOINT (none inside its few seconds): 0.47–0.54 in 9 runs on 2026-12-02
    assert result.rows_s / result.raw_copy_rows_s >= 0.45
    # the durable ceiling (logged tables, keys during the COPY, indexes after) bounds every path that keeps its promises
    assert result.durable_copy_rows_s < result.keys_copy_rows_s < result.raw_copy_rows_s
    assert result.rows_s / result.durable_copy_rows_s >= 0.6


@pytest.mark.benchmark
def test_canton_sustained_last_million_keeps_pace_with_the_first(db_url: str) -> None:
    """Issue 19: ≥ 10M rows into growing tables; rows per CPU second is the ratio other sessions' load spares."""
    from benchmarks import canton_sustained

    result = canton_sustained.run(db_url, rows=10_000_000)
    print("\n" + result.report())
    assert result.rows >= 10_000_000
    # the first run defers the secondary indexes (empty tables); the second is the first that maintains them
    assert result.chunks[-1].rows_cpu_s / result.chunks[1].rows_cpu_s >= 0.8


@pytest.mark.benchmark
def test_canton_two_runs_side_by_side_land_both_halves(db_url: str) -> None:
    from benchmarks import canton_runs

    result = canton_runs.run(db_url, days=20)
    print("\n" + result.report())
    assert result.one.rows == sum(r.rows for r in result.two) > 0
