"""Fetch ahead of the writer: a partition's pages arrive in a bounded queue while its COPY is already running.

The writer does not wait for a whole partition before it starts, and memory holds at most `max_chunks` chunks of
rows per partition in flight. An error while fetching is raised in the consumer, inside the partition's transaction,
so nothing of that partition is committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any

_DONE = object()
_POLL_S = 0.1


class Prefetch:
    """Runs `produce` (an iterator of row chunks, e.g. one per API page) on `pool`; `rows()` yields them in order.

    `metadata` gains `fetched_rows` and `fetch_seconds` once the producer is done (before `rows()` ends). Pools hand out
    threads in submission order, so a consumer taking partitions in that order never waits on an unstarted producer.
    """

    def __init__(
        self,
        pool: Executor,
        produce: Callable[[], Iterable[Sequence[Sequence[Any]]]],
        max_chunks: int = 8,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.metadata: dict[str, Any] = {} if metadata is None else metadata
        self._queue: queue.Queue = queue.Queue(maxsize=max_chunks)
        self._stop = threading.Event()
        self._future = pool.submit(self._run, produce)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce: Callable[[], Iterable[Sequence[Sequence[Any]]]]) -> None:
        started, count = time.perf_counter(), 0
        try:
            for chunk in produce():
                count += len(chunk)
                if not self._put(chunk):
                    return  # the consumer went away
        except Exception as exc:  # raised again in the consumer, inside its transaction
            self._put(exc)
            return
        seconds = time.perf_counter() - started
        self.metadata.update(
            fetched_rows=count, fetch_seconds=round(seconds, 3), fetch_rows_per_s=round(count / max(seconds, 1e-9))
        )
        self._put(_DONE)

    def rows(self) -> Iterator[Sequence[Any]]:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    # Stopped (the run is failing), never to start (cancelled), or died without a word.
                    if self._stop.is_set() or (self._future.done() and self._queue.empty()):
                        raise RuntimeError("the fetch ahead of this partition stopped before its end") from None
                    continue
                if item is _DONE:
                    return
                if isinstance(item, Exception):
                    raise item
                yield from item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the producer (it may be blocked on a full queue) when the consumer stops early."""
        self._stop.set()
