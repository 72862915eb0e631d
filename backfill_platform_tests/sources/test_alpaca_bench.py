"""Benchmark: Alpaca calls ÷ floor for this platform and the replaced method, one run (marker `benchmark`)."""

import pytest

from benchmarks import alpaca


@pytest.mark.benchmark
def test_alpaca_calls_against_the_floor(db_url: str) -> None:
    result = alpaca.run(db_url)
    print("\n" + result.report())
    for scenario in result.scenarios:
        assert scenario.calls / scenario.floor <= 1.1
        assert scenario.replaced_calls >= scenario.calls
    assert result.scenarios[0].replaced_calls >= 100  # one call per 50 symbols at least
    assert (
        result.rate_bound is not None
        and 0.8 <= result.rate_bound.achieved_per_s / result.rate_bound.allowed_per_s <= 1.05
    )
