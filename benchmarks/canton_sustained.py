"""Canton sustained benchmark: ≥ N rows of updates + events in successive runs of ~1M rows into growing tables.

The figure that decides the real history's time is the rate of the last million into tables already that large
(primary keys on random ids, TOAST, checkpoints), not the first 430k into empty tables. Each chunk is one ranged run
of whole days at MainNet's volume (FULL_SCALE, ≈95k rows a day); the sandbox renders a chunk before its run starts,
so only the platform and PostgreSQL are timed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import httpx
import psycopg

from backfill_platform.database import one_row
from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import CantonApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as generator
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from benchmarks.canton import FULL_HISTORY_ROWS, _cpu_by_party

CHUNK_ROWS = 1_000_000
ROWS_PER_UPDATE = 4.3  # updates + their events, the sandbox's mix (measured: 430k rows from 100k updates)
# WAL, full-page images, checkpoints; then the client backends' buffer misses (blocks read into shared_buffers) and
# the dirty buffers they wrote out themselves to make room: what random keys cost once their index pages no longer
# fit in shared_buffers.
WAL_SQL = """
SELECT w.wal_bytes, w.wal_fpi, c.num_timed + c.num_requested, io.reads, io.writes
FROM pg_stat_wal w, pg_stat_checkpointer c,
     (SELECT coalesce(sum(reads), 0) AS reads, coalesce(sum(writes), 0) AS writes FROM pg_stat_io
      WHERE backend_type = 'client backend' AND object = 'relation') io
"""
# huge_pages_status (PostgreSQL 17+; NULL before): whether shared memory got huge pages, which measurably cheapen
# random-key inserts (benchmarks/random_keys.py) and exist only where root reserved them.
SERVER_SETTINGS = (
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "synchronous_commit",
    "huge_pages_status",
)


@dataclass
class Chunk:
    days: int
    rows: int  # rows added by this chunk (updates + events)
    seconds: float
    cpu: float  # CPU seconds of PostgreSQL and the platform during the run: a rate that other sessions' load spares
    load: float  # 1-minute load average at the run's end (the machine is shared)
    used: dict[str, float] = field(default_factory=dict)  # CPU seconds by component
    # The run's write-ahead log (pg_stat_wal deltas) and checkpoints: full-page images grow with the number of
    # distinct index pages that random keys touch between checkpoints, which is where a growing table costs more.
    wal_bytes: int = 0
    wal_fpi: int = 0
    checkpoints: int = 0
    reads: int = 0  # blocks the run's backends read into shared_buffers (misses)
    writes: int = 0  # dirty blocks they wrote out themselves to free a buffer

    @property
    def rows_s(self) -> float:
        return self.rows / self.seconds

    @property
    def rows_cpu_s(self) -> float:
        return self.rows / self.cpu


@dataclass
class SustainedResult:
    chunks: list[Chunk]
    table_bytes: int
    server: dict[str, str]
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    maintained: Chunk | None = None  # the first run's days again, indexes maintained instead of deferred

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.chunks)

    def projection_hours(self) -> tuple[float, float]:
        """84M rows: the measured part plus the rest at the last chunk's rate, and with the decline per million
        (a least-squares line through the chunks' rates) continued, floored at a tenth of the first rate."""
        rest = FULL_HISTORY_ROWS - self.rows
        flat = self.seconds + max(rest, 0) / self.chunks[-1].rows_s
        xs = [i + 0.5 for i in range(len(self.chunks))]
        ys = [c.rows_s for c in self.chunks]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
            sum((x - mx) ** 2 for x in xs), 1e-9
        )
        trend, done = self.seconds, self.rows
        while done < FULL_HISTORY_ROWS:
            x = done / CHUNK_ROWS + 0.5
            rate = max(my + slope * (x - mx), ys[0] / 10)
            trend += CHUNK_ROWS / rate
            done += CHUNK_ROWS
        return flat / 3600, trend / 3600

    def _deferral(self) -> list[str]:
        """Run 1 both ways: the like-for-like last ÷ first, and what deferring the indexes saved (build included)."""
        if self.maintained is None:
            return []
        m, first, last = self.maintained, self.chunks[0], self.chunks[-1]
        return [
            f"run 1 with indexes maintained (as every later run): {m.rows:,} rows in {m.seconds:.1f} s = "
            f"{m.rows_s:,.0f} rows/s, {m.rows_cpu_s:,.0f} per CPU s; deferred and built at the end: "
            f"{first.seconds:.1f} s ({first.seconds / m.seconds:.2f}× the time); last ÷ first maintained: "
            f"{last.rows_s / m.rows_s:.2f} in rows/s, {last.rows_cpu_s / m.rows_cpu_s:.2f} per CPU second (goal ≥ 0.80)"
        ]

    def report(self) -> str:
        lines = [f"Canton sustained: {self.rows:,} rows in {len(self.chunks)} runs, {self.seconds:.0f} s"]
        total = 0
        for i, c in enumerate(self.chunks):
            total += c.rows
            lines.append(
                f"  run {i + 1:>2}: {c.days} days, {c.rows:,} rows, {c.rows_s:,.0f} rows/s, {c.rows_cpu_s:,.0f} rows "
                f"per CPU second (tables {total:,}, load {c.load:.1f}); WAL {c.wal_bytes / max(c.rows, 1):,.0f} B and "
                f"{c.wal_fpi / max(c.rows, 1):.2f} full-page images a row, {c.checkpoints} checkpoints; "
                f"{c.reads / max(c.rows, 1):.2f} buffer misses and {c.writes / max(c.rows, 1):.2f} backend writes a row"
            )
        ratio = self.chunks[-1].rows_s / self.chunks[0].rows_s
        cpu_ratio = self.chunks[-1].rows_cpu_s / self.chunks[0].rows_cpu_s
        # The first run loads into empty tables and builds the secondary indexes once at its end; every later run
        # maintains them row by row: the second run is the first like-for-like one.
        second = self.chunks[min(1, len(self.chunks) - 1)]
        cpu_ratio_2 = self.chunks[-1].rows_cpu_s / second.rows_cpu_s
        flat, trend = self.projection_hours()
        cpu = ", ".join(f"{k} {v:.0f} s" for k, v in self.cpu_seconds.items())
        server = ", ".join(f"{k}={v}" for k, v in self.server.items())
        lines += [
            f"last ÷ first: {ratio:.2f} in rows/s, {cpu_ratio:.2f} in rows per CPU second (goal ≥ 0.80); "
            f"overall {self.rows / self.seconds:,.0f} rows/s; last ÷ second (indexes maintained in both) "
            f"{self.chunks[-1].rows_s / second.rows_s:.2f} in rows/s, {cpu_ratio_2:.2f} per CPU second",
            *self._deferral(),
            f"CPU: {cpu} on {os.cpu_count()} cores; tables + indexes {self.table_bytes / 2**30:.2f} GiB",
            f"server: {server}",
            f"projected 84M rows: {flat:.2f} h at the last run's rate, {trend:.2f} h with the decline continued",
        ]
        return "\n".join(lines)


def _rows(conn: psycopg.Connection) -> int:
    return sum(one_row(conn, f"SELECT count(*) FROM canton.{t}")[0] for t in ("updates", "events"))


def _reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()


@contextmanager
def _indexes_maintained() -> Iterator[None]:
    """The first run as every later one: secondary indexes kept up row by row, not deferred (the A/B of deferral)."""
    original = PostgresIOManager._defer_indexes
    PostgresIOManager._defer_indexes = lambda self, spec, targets: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        PostgresIOManager._defer_indexes = original  # type: ignore[method-assign]


def _chunk(
    dsn: str, scan: Sequence[Any], resources: dict[str, Any], sandbox: SandboxProcess, day: date, days: int
) -> Chunk:
    """One ranged run of `days` days from `day`, rendered by the sandbox before it starts; its rows, time and CPU."""
    assert sandbox.proc is not None
    httpx.post(
        f"{sandbox.origin}/_sandbox/prerender/canton",
        json={"start": day.isoformat(), "days": days + 1, "clear": True},
        timeout=900,
    ).raise_for_status()
    last = day + timedelta(days=days - 1)
    with psycopg.connect(dsn) as conn:
        had = _rows(conn) if one_row(conn, "SELECT to_regclass('canton.events')")[0] else 0
        wal_before = one_row(conn, WAL_SQL)
    before = _cpu_by_party(sandbox.proc.pid)
    started = time.perf_counter()
    tags = {RANGE_START_TAG: day.isoformat(), RANGE_END_TAG: last.isoformat()}
    result = dg.materialize(scan, resources=resources, tags=tags)
    seconds = time.perf_counter() - started
    used = {k: v - before[k] for k, v in _cpu_by_party(sandbox.proc.pid).items()}
    assert result.success
    with psycopg.connect(dsn) as conn:
        rows = _rows(conn) - had
        wal = [int(after - b) for after, b in zip(one_row(conn, WAL_SQL), wal_before, strict=True)]
    return Chunk(days, rows, seconds, used["postgres"] + used["platform"], os.getloadavg()[0], used, *wal)


def run(dsn: str, rows: int = 10_000_000, first: str = "2024-07-01") -> SustainedResult:
    """The runs into growing tables; then run 1's days again into emptied tables with indexes maintained."""
    from backfill_platform.sources import load, named

    scan = named("canton", load()).assets
    with psycopg.connect(dsn, autocommit=True) as conn:
        server = {k: one_row(conn, "SELECT current_setting(%s, true)", (k,))[0] for k in SERVER_SETTINGS}
    scale = generator.FULL_SCALE
    config = SandboxConfig(scale=scale, canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    days_per_chunk = max(1, round(CHUNK_ROWS / (ROWS_PER_UPDATE * generator.UPDATES_PER_DAY * scale)))
    day, chunks, cpu = date.fromisoformat(first), [], {}
    with SandboxProcess(config) as sandbox:
        resources = {
            "canton": CantonApi(base_url=f"{sandbox.origin}/canton", rate="1000/s"),
            "io_manager": PostgresIOManager(database_url=dsn),
        }
        _reset(dsn)
        for _ in range(math.ceil(rows / CHUNK_ROWS) * 2):  # bounded; ends as soon as `rows` are in
            chunks.append(c := _chunk(dsn, scan, resources, sandbox, day, days_per_chunk))
            for k, v in c.used.items():
                cpu[k] = cpu.get(k, 0.0) + v
            print(f"run {len(chunks)}: {c.rows:,} rows, {c.rows_s:,.0f} rows/s, {c.rows_cpu_s:,.0f}/CPU s", flush=True)
            if sum(x.rows for x in chunks) >= rows:
                break
            day += timedelta(days=days_per_chunk)
        with psycopg.connect(dsn) as conn:
            (size,) = one_row(
                conn,
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'canton' AND c.relkind = 'r'",
            )
        # Last, in a warm process (placed first, the same run took 3.4× as long as when it came after a warm-up).
        _reset(dsn)
        with _indexes_maintained():
            maintained = _chunk(dsn, scan, resources, sandbox, date.fromisoformat(first), days_per_chunk)
        print(f"run 1 with indexes maintained: {maintained.rows:,} rows, {maintained.rows_s:,.0f} rows/s", flush=True)
    return SustainedResult(chunks, int(size), server, cpu, maintained)
