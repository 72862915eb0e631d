"""Canton end-to-end benchmark: a ranged run of updates + events against the sandbox, vs raw COPY, one run."""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg
import httpx
import psycopg
from psycopg import sql

from backfill_platform.bench import io
from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import CantonApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG

FULL_HISTORY_ROWS = 84_000_000
UPDATE_COLUMNS = sql.SQL(
    "update_id text, migration_id bigint, record_time timestamptz, synchronizer_id text, effective_at timestamptz, "
    "workflow_id text, kind text, payload jsonb"
)


@dataclass
class CantonBenchResult:
    days: int
    updates: int
    events: int
    seconds: float
    raw_copy_rows_s: float

    @property
    def rows_s(self) -> float:
        return (self.updates + self.events) / self.seconds

    def report(self) -> str:
        hours = FULL_HISTORY_ROWS / self.rows_s / 3600
        return (
            f"Canton {self.days} days: {self.updates:,} updates + {self.events:,} events in {self.seconds:.1f} s "
            f"= {self.rows_s:,.0f} rows/s end to end (fetch, parse, COPY, derive events in SQL, commit per day); "
            f"raw COPY of the same update rows in the same run {self.raw_copy_rows_s:,.0f} rows/s, "
            f"ratio {self.rows_s / self.raw_copy_rows_s:.2f}; "
            f"projected 84M rows: {hours:.1f} h"
        )


def run(dsn: str, days: int = 10, scale: float = 10.0, first: str = "2024-07-01") -> CantonBenchResult:
    from backfill_platform.sources.canton import assets

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    config = SandboxConfig(scale=scale, canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    with SandboxProcess(config) as sandbox:
        httpx.post(
            f"{sandbox.origin}/_sandbox/prerender/canton", json={"start": first, "days": days + 1}, timeout=600
        ).raise_for_status()
        resources = {
            "canton": CantonApi(base_url=f"{sandbox.origin}/canton", rate="1000/s"),
            "io_manager": PostgresIOManager(database_url=dsn),
        }
        last = (dg.DailyPartitionsDefinition(start_date=first).get_partition_keys()[:days])[-1]
        tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
        started = time.perf_counter()
        result = dg.materialize([assets.scan], resources=resources, tags=tags)
        seconds = time.perf_counter() - started
    assert result.success
    with psycopg.connect(dsn) as conn:
        (updates,) = conn.execute("SELECT count(*) FROM canton.updates").fetchone()
        (events,) = conn.execute("SELECT count(*) FROM canton.events").fetchone()
    # The baseline is the same Canton update rows (≈3 KB jsonb each) COPYed raw into an unlogged table.
    from datetime import timedelta

    from backfill_platform.sandbox.generators import canton as generator
    from backfill_platform.sources.canton.assets import update_row
    from backfill_platform.sources.canton.client import decode_page

    day0 = dg.DailyPartitionsDefinition(start_date=first).get_first_partition_window().start.date()
    sample = [
        [
            update_row(u)
            for m in (0, 1, 2)
            for u in decode_page(
                b'{"transactions":['
                + b",".join(generator.day_updates(config.seed, m, day0 + timedelta(days=d), scale).rendered)
                + b"]}"
            )
        ]
        for d in range(3)
    ]
    raw = sum(len(b) for b in sample) / io.raw_copy(dsn, sample, UPDATE_COLUMNS)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
    return CantonBenchResult(days, updates, events, seconds, raw)
