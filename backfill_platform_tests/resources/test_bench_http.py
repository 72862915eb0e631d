"""Benchmark: a shared budget is used to the last allowed call and never exceeded (ratios from one run)."""

from __future__ import annotations

import pytest

from benchmarks import http


@pytest.mark.benchmark
def test_four_processes_share_one_budget(db_url: str) -> None:
    result = http.run(db_url, rate=50, processes=4, seconds=10)
    print("\n" + result.report())
    assert result.max_window <= result.rate
    assert result.client_429 == 0
    assert result.throughput_ratio >= 0.95
