"""Benchmark: Stacks busy wallets over half a year at 500 calls/min (marker `benchmark`)."""

import pytest

from benchmarks import stacks


@pytest.mark.benchmark
def test_stacks_calls_over_floor_and_rate(db_url: str) -> None:
    result = stacks.run(db_url, wallets=3, days=180, keyed=True)
    print("\n" + result.report())
    assert result.calls_over_floor <= 1.1
    assert 0.9 <= result.rate_ratio <= 1.0 and result.http_429 == 0  # rate-bound: 540 calls > 500/min
