"""Benchmark: the write path against raw COPY and against the 500-row batched upserts it replaces."""

import pytest

from benchmarks import io


@pytest.mark.benchmark
def test_write_path_speed(db_url: str) -> None:
    result = io.run(db_url, rows=1_000_000)
    print("\n" + result.report())
    assert result.write_path_rows_s / result.raw_copy_rows_s >= 0.25
    assert result.write_path_rows_s / result.batched_upsert_rows_s >= 3
