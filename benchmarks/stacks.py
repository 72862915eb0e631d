"""Stacks benchmark: busy wallets walked over a long range against the sandbox, at the documented per-minute limit.

Reports the calls made ÷ the floor (Σ over wallets of ⌈transactions walked ÷ 50⌉; the block lookup and any 429s
count as calls made) and the achieved ÷ allowed request rate over the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import httpx
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import StacksApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import stacks as generator
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.stacks import assets, partitions
from backfill_platform.sources.stacks.settings import PAGE_SIZE


@dataclass
class StacksBenchResult:
    wallets: int
    days: int
    rows: int
    walked: int
    floor: int
    calls: int
    http_429: int
    seconds: float
    allowed_per_minute: int
    busiest_minute: int  # the most calls the sandbox saw within any 60 s: what the per-minute limit counts

    @property
    def calls_over_floor(self) -> float:
        return self.calls / self.floor

    @property
    def rate_ratio(self) -> float:
        """Achieved ÷ allowed: the busiest minute's calls ÷ the limit (1.0 = the budget used in full, never above)."""
        return self.busiest_minute / self.allowed_per_minute

    def report(self) -> str:
        return (
            f"Stacks {self.wallets} wallets × {self.days} days: {self.rows:,} rows, {self.walked:,} transactions "
            f"walked; {self.calls:,} calls vs floor {self.floor:,} (Σ ⌈walked ÷ {PAGE_SIZE}⌉) = "
            f"{self.calls_over_floor:.3f} (goal ≤ 1.1); {self.http_429} answers 429; {self.seconds:.1f} s; "
            f"busiest 60 s {self.busiest_minute} calls vs {self.allowed_per_minute}/min allowed = "
            f"{self.rate_ratio:.2f} (mean {self.calls / self.seconds * 60:,.0f} calls/min)"
        )


def run(
    dsn: str, wallets: int = 3, days: int = 180, keyed: bool = True, last: date = date(2026, 10, 31)
) -> StacksBenchResult:
    first = last - timedelta(days=days - 1)
    chosen = generator.busy_wallets(SandboxConfig().seed, wallets)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS stacks CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    config = SandboxConfig()
    cfg = SourceConfig("stacks", first, "UTC", {"WALLETS": chosen})
    defs = assets.build(cfg, partitions.daily(cfg))
    with SandboxProcess(config) as sandbox:
        api = StacksApi(base_url=f"{sandbox.origin}/stacks", api_key=config.stacks_api_key if keyed else "")
        resources = {"stacks": api, "io_manager": PostgresIOManager(database_url=dsn)}
        tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
        started = time.perf_counter()
        result = dg.materialize(defs, resources=resources, tags=tags)
        seconds = time.perf_counter() - started
        stats = sandbox.stats()["apis"]["stacks"]
        busiest = httpx.get(f"{sandbox.origin}/_sandbox/arrivals/stacks", params={"window": 60}, timeout=30).json()
    assert result.success
    summary = next(
        e.asset_observation_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    )
    with psycopg.connect(dsn) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM stacks.wallet_transactions").fetchone()
    allowed = config.stacks_per_minute_keyed if keyed else config.stacks_per_minute_anonymous
    return StacksBenchResult(
        wallets=wallets,
        days=days,
        rows=rows,
        walked=int(summary["transactions_walked"].value),
        floor=int(summary["pages_floor"].value),
        calls=int(stats["requests"]),
        http_429=int(stats.get("429", 0)),
        seconds=seconds,
        allowed_per_minute=allowed,
        busiest_minute=int(busiest["busiest"]),
    )
