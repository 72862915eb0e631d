"""Benchmark: a full year of Racing results and racecards at the real 2 requests/second (marker `benchmark`)."""

import pytest

from benchmarks import racing


@pytest.mark.benchmark
def test_racing_year_calls_against_the_floor_and_rate(db_url: str) -> None:
    result = racing.run(db_url)
    print("\n" + result.report())
    assert result.calls <= 1.05 * result.floor
    assert result.achieved_rate / racing.ALLOWED_RATE >= 0.95
    assert result.http_429 == 0
