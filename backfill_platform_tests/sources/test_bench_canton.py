"""Benchmark: Canton updates + events end to end against the sandbox, one run.

The issue's goal is 100k rows/s; this machine (2 cores shared by the simulator, the run and PostgreSQL) reaches
about 18k, 0.72x raw COPY of the same update rows (see the README). The assertions guard against regressions; the
printout gives the ratio to the goal.
"""

import pytest

from backfill_platform.bench import canton


@pytest.mark.benchmark
def test_canton_end_to_end_rows_per_second(db_url: str) -> None:
    result = canton.run(db_url, days=10, scale=10.0)
    print("\n" + result.report())
    assert result.updates > 90_000 and result.events > 3 * result.updates
    print(f"ratio to the 100k rows/s goal: {result.rows_s / 100_000:.2f}")
    assert result.rows_s >= 10_000
    assert result.rows_s / result.raw_copy_rows_s >= 0.5
