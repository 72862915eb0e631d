"""Canton end-to-end benchmark: a ranged run of updates + events against the sandbox, vs raw COPY, one run.

Reports rows/s end to end, raw COPY of the very same rows (updates as the run sent them, events as it stored them)
into UNLOGGED tables without indexes on the same server, their ratio, the CPU each party used, and the projected
time for the 84M-row history.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg
import httpx
import psutil
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import CantonApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as generator
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.canton.tables import EVENTS, UPDATES

FULL_HISTORY_ROWS = 84_000_000


@dataclass
class CantonBenchResult:
    days: int
    updates: int
    events: int
    seconds: float
    raw_copy_seconds: float
    raw_copy_uncompressed_seconds: float
    durable_copy_seconds: float
    keys_copy_seconds: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.updates + self.events

    @property
    def rows_s(self) -> float:
        return self.rows / self.seconds

    @property
    def raw_copy_rows_s(self) -> float:
        return self.rows / self.raw_copy_seconds

    @property
    def raw_copy_uncompressed_rows_s(self) -> float:
        return self.rows / self.raw_copy_uncompressed_seconds

    @property
    def durable_copy_rows_s(self) -> float:
        return self.rows / self.durable_copy_seconds

    @property
    def keys_copy_rows_s(self) -> float:
        return self.rows / self.keys_copy_seconds

    def report(self) -> str:
        hours = FULL_HISTORY_ROWS / self.rows_s / 3600
        cpu = ", ".join(f"{k} {v:.1f} s" for k, v in self.cpu_seconds.items())
        return (
            f"Canton {self.days} days: {self.updates:,} updates + {self.events:,} events in {self.seconds:.1f} s "
            f"= {self.rows_s:,.0f} rows/s end to end (fetch, split pages, COPY, derive events in SQL, commit per day); "
            f"raw COPY of the same rows into unlogged, index-free tables in the same run {self.raw_copy_rows_s:,.0f} "
            f"rows/s, ratio {self.rows_s / self.raw_copy_rows_s:.2f} (with payloads left uncompressed: "
            f"{self.raw_copy_uncompressed_rows_s:,.0f} rows/s); durable ceiling (the same COPY into logged tables "
            f"with their primary keys, secondary indexes built after) {self.durable_copy_rows_s:,.0f} rows/s = "
            f"{self.durable_copy_rows_s / self.raw_copy_rows_s:.2f} × raw COPY (keys only, no secondary indexes: "
            f"{self.keys_copy_rows_s:,.0f} rows/s = {self.keys_copy_rows_s / self.raw_copy_rows_s:.2f} ×), the most "
            f"any path that keeps logged tables and keys can reach; the run reached "
            f"{self.rows_s / self.durable_copy_rows_s:.2f} × that ceiling; "
            f"goal 100,000 rows/s, ratio "
            f"{self.rows_s / 100_000:.2f}; CPU during the run: {cpu} on {os.cpu_count()} cores; "
            f"projected 84M rows: {hours:.2f} h"
        )


def _cpu_by_party(sandbox_pid: int) -> dict[str, float]:
    """CPU seconds so far of PostgreSQL (live processes, plus the exited backends the postmaster reaped), the sandbox
    and this process (the platform)."""
    totals = {"postgres": 0.0, "platform": 0.0, "sandbox": 0.0}
    for proc in psutil.process_iter(["pid", "ppid", "name", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        used = times.user + times.system
        if proc.info["pid"] == os.getpid():
            totals["platform"] += used
        elif proc.info["pid"] == sandbox_pid:
            totals["sandbox"] += used
        elif "postgres" in (proc.info["name"] or ""):
            totals["postgres"] += used
            if not _is_postgres(proc.info["ppid"]):  # the postmaster: add its reaped children
                totals["postgres"] += times.children_user + times.children_system
    return totals


def _is_postgres(pid: int) -> bool:
    try:
        return "postgres" in psutil.Process(pid).name()
    except psutil.Error:
        return False


def run(dsn: str, days: int = 10, scale: float = 10.0, first: str = "2024-07-01") -> CantonBenchResult:
    from backfill_platform.sources import load, named

    scan = named("canton", load()).assets
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    config = SandboxConfig(scale=scale, canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    partitions = dg.DailyPartitionsDefinition(start_date=first)
    last = partitions.get_partition_keys()[:days][-1]
    with SandboxProcess(config) as sandbox:
        httpx.post(
            f"{sandbox.origin}/_sandbox/prerender/canton", json={"start": first, "days": days + 1}, timeout=600
        ).raise_for_status()
        resources = {
            "canton": CantonApi(base_url=f"{sandbox.origin}/canton", rate="1000/s"),
            "io_manager": PostgresIOManager(database_url=dsn),
        }
        before = _cpu_by_party(sandbox.proc.pid)
        started = time.perf_counter()
        result = dg.materialize(scan, resources=resources, tags={RANGE_START_TAG: first, RANGE_END_TAG: last})
        seconds = time.perf_counter() - started
        after = _cpu_by_party(sandbox.proc.pid)
    assert result.success
    with psycopg.connect(dsn) as conn:
        (updates,) = conn.execute("SELECT count(*) FROM canton.updates").fetchone()
        (events,) = conn.execute("SELECT count(*) FROM canton.events").fetchone()
    day0 = partitions.get_first_partition_window().start.date()
    update_rows, event_text = run_rows(dsn, config, [day0 + timedelta(days=d) for d in range(days)])
    raw = raw_copy_seconds(dsn, update_rows, event_text)
    raw_uncompressed = raw_copy_seconds(dsn, update_rows, event_text, compress=False)
    durable = raw_copy_seconds(dsn, update_rows, event_text, durable=True)
    keys_only = raw_copy_seconds(dsn, update_rows, event_text, durable=True, secondary_indexes=False)
    cpu = {k: after[k] - before[k] for k in after}
    return CantonBenchResult(days, updates, events, seconds, raw, raw_uncompressed, durable, keys_only, cpu)


def run_rows(dsn: str, config: SandboxConfig, days: list) -> tuple[list[tuple], list[bytes]]:
    """The run's rows again: updates as the run sent them to COPY, events as COPY text of what it stored."""
    from backfill_platform.sources.canton.assets import update_row
    from backfill_platform.sources.canton.client import decode_page

    update_rows = [
        update_row(u)
        for day in days
        for m in generator.MIGRATIONS
        for u in decode_page(
            b'{"transactions":['
            + b",".join(generator.day_updates(config.seed, m.migration_id, day, config.scale).rendered)
            + b"]}"
        )
    ]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor().copy("COPY canton.events TO STDOUT") as out:
        event_text = [bytes(chunk) for chunk in out]
    return update_rows, event_text


def raw_copy_seconds(
    dsn: str,
    update_rows: list[tuple],
    event_text: list[bytes],
    compress: bool = True,
    durable: bool = False,
    secondary_indexes: bool = True,
) -> float:
    """COPY the run's rows again into UNLOGGED tables without keys or indexes: this server's ceiling for them.

    `compress=False` keeps rows of up to ~8 KB inline and uncompressed (no pglz), the ceiling at twice the bytes.
    `durable=True` is the least a run must do instead, so its speed is the ceiling of every durable path: logged
    tables, primary keys during the COPY, the secondary indexes built after it (as a deferring first load does;
    `secondary_indexes=False` leaves them out), and the events already derived for free."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        conn.execute("CREATE SCHEMA bench")
        options = "" if compress else " WITH (toast_tuple_target = 8160)"
        for spec in (UPDATES, EVENTS):
            kind = "" if durable else "UNLOGGED "
            conn.execute(f"CREATE {kind}TABLE bench.{spec.name} (LIKE {spec.qualified}){options}")
            if durable:
                conn.execute(f"ALTER TABLE bench.{spec.name} ADD PRIMARY KEY ({', '.join(spec.primary_key)})")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY bench.updates FROM STDIN") as copy:
                for row in update_rows:
                    copy.write_row(row)
            with cur.copy("COPY bench.events FROM STDIN") as copy:
                for chunk in event_text:
                    copy.write(chunk)
            for spec in (UPDATES, EVENTS) if durable and secondary_indexes else ():
                for columns, method in spec.secondary_indexes:
                    cur.execute(f"CREATE INDEX ON bench.{spec.name} USING {method} ({', '.join(columns)})")
        seconds = time.perf_counter() - started
        conn.execute("DROP SCHEMA bench CASCADE")
    return seconds
