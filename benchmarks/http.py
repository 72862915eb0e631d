"""Budget benchmark: N processes share one R/s budget against a server that counts per-second windows."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
import uuid
from dataclasses import dataclass

from backfill_platform.resources.budget import RateBudget, Window
from backfill_platform.resources.http import ApiSession
from backfill_platform.sandbox.server import SandboxProcess


@dataclass
class HttpBenchResult:
    rate: int
    processes: int
    seconds: float
    calls: int
    max_window: int
    client_429: int
    throughput_ratio: float
    decision_ms: float
    pyrate_decision_ms: float | None

    def report(self) -> str:
        pyrate = (
            f"; pyrate-limiter PostgresBucket {self.pyrate_decision_ms:.2f} ms "
            f"({self.pyrate_decision_ms / self.decision_ms:.1f}x ours)"
            if self.pyrate_decision_ms
            else ""
        )
        return (
            f"budget {self.rate}/s shared by {self.processes} processes for {self.seconds:.0f} s: {self.calls} calls, "
            f"busiest second {self.max_window} (limit {self.rate}), {self.client_429} client-caused 429s, "
            f"throughput {self.throughput_ratio:.3f} x R; budget decision {self.decision_ms:.2f} ms/request{pyrate}"
        )


def _worker(dsn: str, budget_key: str, origin: str, rate: int, until, ready: mp.Queue, out: mp.Queue) -> None:
    budget = RateBudget(dsn, budget_key, (Window(rate, 1.0),))
    with ApiSession("bench", origin, {}, budget, max_attempts=1) as session:
        ready.put(time.time())
        calls = refused = 0
        while until.value == 0 or time.time() < until.value:
            try:
                session.get("/_bench/ping", {"limit": rate})
                calls += 1
            except Exception:
                refused += 1
    out.put((calls, refused))


def decision_ms(dsn: str, n: int = 2000) -> float:
    budget = RateBudget(dsn, f"decide-{uuid.uuid4().hex[:8]}", (Window(10**7, 1.0),))
    budget.try_acquire()
    started = time.perf_counter()
    for _ in range(n):
        budget.try_acquire()
    budget.close()
    return (time.perf_counter() - started) / n * 1000


def pyrate_decision_ms(dsn: str, n: int = 2000) -> float | None:
    """The same decision through pyrate-limiter's PostgresBucket (the maintained alternative)."""
    try:
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import Duration, Limiter, Rate
        from pyrate_limiter.buckets.postgres import PostgresBucket
    except ImportError:
        return None
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        bucket = PostgresBucket(pool, f"bench_{uuid.uuid4().hex[:8]}", [Rate(10**7, Duration.SECOND)])
        limiter = Limiter(bucket)
        limiter.try_acquire("x")
        started = time.perf_counter()
        for _ in range(n):
            limiter.try_acquire("x")
        return (time.perf_counter() - started) / n * 1000


def run(dsn: str, rate: int = 50, processes: int = 4, seconds: float = 10.0) -> HttpBenchResult:
    with SandboxProcess() as server:
        key = f"bench-{uuid.uuid4().hex[:8]}"
        RateBudget(dsn, key, (Window(rate, 1.0),))  # create slots before the race starts
        ctx = mp.get_context("spawn")
        ready: mp.Queue = ctx.Queue()
        out: mp.Queue = ctx.Queue()
        until = ctx.Value("d", 0.0)
        workers = [
            ctx.Process(target=_worker, args=(dsn, key, server.origin, rate, until, ready, out))
            for _ in range(processes)
        ]
        for w in workers:
            w.start()
        # Measure whole clock seconds once every worker runs (they import Dagster first, which takes seconds).
        start = int(max(ready.get(timeout=120) for _ in workers)) + 2
        until.value = start + seconds
        results = [out.get(timeout=seconds + 60) for _ in workers]
        for w in workers:
            w.join(30)
        counts = server.stats()["apis"].get("bench", {})
        until_s = until.value
    windows = {int(s): n for s, n in counts.items() if s.isdigit() and start <= int(s) < until_s}
    calls = sum(windows.values())
    return HttpBenchResult(
        rate=rate,
        processes=processes,
        seconds=seconds,
        calls=calls,
        max_window=max(windows.values(), default=0),
        client_429=sum(r for _, r in results),
        throughput_ratio=statistics.fmean(windows.values()) / rate if windows else 0.0,
        decision_ms=decision_ms(dsn),
        pyrate_decision_ms=pyrate_decision_ms(dsn),
    )
