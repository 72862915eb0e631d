"""Prefetch: a partition's chunks fetched ahead into a bounded queue, drained by the writer's COPY."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backfill_platform.resources.prefetch import Prefetch


def test_chunks_arrive_in_order_and_the_producer_never_runs_more_than_the_queue_ahead() -> None:
    produced: list[int] = []

    def produce():
        for i in range(20):
            produced.append(i)
            yield [(i, f"row {i}")]

    with ThreadPoolExecutor(1) as pool:
        stream = Prefetch(pool, produce, max_chunks=3)
        time.sleep(0.3)  # a slow writer: the producer must stop at the queue's bound
        assert len(produced) <= 3 + 1
        rows = list(stream.rows())
    assert rows == [(i, f"row {i}") for i in range(20)]
    assert stream.metadata["fetched_rows"] == 20 and stream.metadata["fetch_seconds"] >= 0


def test_a_fetch_error_is_raised_in_the_consumer() -> None:
    def produce():
        yield [(1,)]
        raise ValueError("page 2 was malformed")

    with ThreadPoolExecutor(1) as pool:
        stream = Prefetch(pool, produce)
        with pytest.raises(ValueError, match="page 2 was malformed"):
            list(stream.rows())


def test_close_releases_a_producer_blocked_on_a_full_queue() -> None:
    def produce():
        while True:
            yield [(0,)]

    with ThreadPoolExecutor(1) as pool:
        stream = Prefetch(pool, produce, max_chunks=2)
        time.sleep(0.2)
        stream.close()
        stream._future.result(timeout=2)  # returned instead of waiting forever on the queue
