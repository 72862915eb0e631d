"""Racing benchmark: a full year of results and racecards from the sandbox at the API's real 2 requests/second.

Reports calls made against the floor (Σ over chunks of ⌈races ÷ 100⌉, plus one racecard call per day on or after
2023-01-23), the achieved request rate against the allowed one, 429s, and the projection for 2015 → today against
the replaced script's 7,891 calls. The floor for other chunk lengths is computed from the generator (no calls).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import httpx
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import RacingApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import racing as generator
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.blaze.client import windows
from backfill_platform.sources.racing import settings
from backfill_platform.sources.racing.tables import RACECARDS

REPLACED_CALLS = 7_891  # the replaced script, 2015-01-01 → today (3,944 days), 60–110 minutes
REPLACED_DAYS = 3_944
ALLOWED_RATE = 2.0
GB_IRE_RACES_A_DAY = 35  # the figure for the real API's GB + IRE cards


@dataclass
class RacingBenchResult:
    days: int
    chunk_days: int
    races: int
    results_calls: int
    racecard_calls: int
    results_floor: int
    racecard_floor: int
    seconds: float
    achieved_rate: float
    http_429: int
    floors_by_chunk: dict[int, int]
    run_rates: tuple[float, float]  # requests/s of the results run and of the racecards run

    @property
    def calls(self) -> int:
        return self.results_calls + self.racecard_calls

    @property
    def floor(self) -> int:
        return self.results_floor + self.racecard_floor

    def projection(self, races_a_day: float) -> int:
        """Calls for the replaced script's 3,944 days: results in chunks, racecards from 2023-01-23 only."""
        chunks = math.ceil(REPLACED_DAYS / self.chunk_days)
        results = math.ceil(REPLACED_DAYS * races_a_day / 100) + chunks // 2  # a chunk's last page is half full
        racecard_days = (date(2015, 1, 1) + timedelta(days=REPLACED_DAYS) - settings.RACECARDS_FROM).days
        return results + racecard_days

    def report(self) -> str:
        sandbox_rate = self.races / self.days
        by_chunk = ", ".join(f"{d} d: {c}" for d, c in self.floors_by_chunk.items())
        gb_ire, here = self.projection(GB_IRE_RACES_A_DAY), self.projection(sandbox_rate)
        return (
            f"Racing {self.days} days ({self.races:,} races, chunks of {self.chunk_days} days): {self.calls} calls "
            f"(results {self.results_calls}, racecards {self.racecard_calls}) against a floor of {self.floor} "
            f"(results {self.results_floor}, racecards {self.racecard_floor}) = {self.calls / self.floor:.3f} × floor "
            f"(goal ≤ 1.05) in {self.seconds:.0f} s; achieved {self.achieved_rate:.3f} requests/s of "
            f"{ALLOWED_RATE:g} allowed = {self.achieved_rate / ALLOWED_RATE:.3f} (goal ≥ 0.95; results run "
            f"{self.run_rates[0]:.2f}/s, racecards run {self.run_rates[1]:.2f}/s); 429s {self.http_429}. "
            f"Results floor of these days by chunk length: {by_chunk}. Projection 2015 → today ({REPLACED_DAYS:,} "
            f"days): {gb_ire:,} calls at {GB_IRE_RACES_A_DAY} races a day ({gb_ire / REPLACED_CALLS:.2f} of the "
            f"replaced {REPLACED_CALLS:,}), {gb_ire / ALLOWED_RATE / 60:.0f} min at 2/s; {here:,} calls at the "
            f"sandbox's {sandbox_rate:.1f} a day"
        )


def results_floor(seed: int, days: list[date], chunk_days: int) -> int:
    """Σ over chunks of ⌈races ÷ 100⌉ (a chunk without races still costs its one call)."""
    return sum(
        max(1, math.ceil(sum(len(generator.results_for_day(seed, d)) for d in chunk) / settings.RESULTS_PAGE))
        for chunk in windows(days, chunk_days)
    )


def _rate(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def run(
    dsn: str, year: int = 2024, chunk_days: int = int(settings.CHUNK_DAYS), days_run: int = 366
) -> RacingBenchResult:
    from backfill_platform.sources import load, named

    os.environ["BACKFILL_RACING_CHUNK_DAYS"] = str(chunk_days)
    assets = named("racing", load()).assets
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS racing CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    config = SandboxConfig()
    first = date(year, 1, 1)
    last = min(date(year, 12, 31), first + timedelta(days=days_run - 1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
    with SandboxProcess(config) as sandbox:
        racing = RacingApi(
            base_url=f"{sandbox.origin}/racing", username=config.racing_username, password=config.racing_password
        )
        resources = {"racing": racing, "io_manager": PostgresIOManager(database_url=dsn)}
        rates, calls = [], []
        started = time.perf_counter()
        for part in (
            [a for a in assets if RACECARDS.key not in a.keys],
            [a for a in assets if RACECARDS.key in a.keys],
        ):
            sandbox.reset()
            assert dg.materialize(part, resources=resources, tags=tags).success
            stats = sandbox.stats()
            calls.append(stats["routes"])
            rates.append((_rate(httpx_arrivals(sandbox)), stats["apis"]["racing"]))
        seconds = time.perf_counter() - started
    results_calls = calls[0].get("racing results", {}).get("requests", 0)
    racecard_calls = calls[1].get("racing racecards/pro", {}).get("requests", 0)
    total = sum(s["requests"] for _, s in rates)
    achieved = sum(r * s["requests"] for r, s in rates) / total
    with psycopg.connect(dsn) as conn:
        (races,) = conn.execute("SELECT count(*) FROM racing.results").fetchone() or (0,)
    return RacingBenchResult(
        days=len(days),
        chunk_days=chunk_days,
        races=races,
        results_calls=results_calls,
        racecard_calls=racecard_calls,
        results_floor=results_floor(config.seed, days, chunk_days),
        racecard_floor=sum(1 for d in days if d >= settings.RACECARDS_FROM),
        seconds=seconds,
        achieved_rate=achieved,
        http_429=sum(s.get("429", 0) for _, s in rates),
        floors_by_chunk={n: results_floor(config.seed, days, n) for n in (1, 7, 30, 60, 90, 180, 365)},
        run_rates=(rates[0][0], rates[1][0]),
    )


def httpx_arrivals(sandbox: SandboxProcess) -> list[float]:
    return httpx.get(f"{sandbox.origin}/_sandbox/arrivals/racing", timeout=30).json()["arrivals"]
