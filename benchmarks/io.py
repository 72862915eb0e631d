"""Write-path benchmark: the IO manager's path vs raw COPY and vs 500-row batched upserts, one server, one run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from psycopg import sql

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.spec import Column, TableSpec
from backfill_platform.io_managers.writer import Target, write_partition

SPEC = TableSpec(
    schema="bench",
    name="updates",
    columns=(
        Column("update_id", "text"),
        Column("migration_id", "bigint"),
        Column("record_time", "timestamptz"),
        Column("synchronizer_id", "text"),
        Column("payload", "jsonb"),
    ),
    primary_key=("update_id",),
    partition_column="record_time",
)
START = datetime(2024, 7, 1, tzinfo=UTC)
COLUMNS = sql.SQL("update_id text, migration_id bigint, record_time timestamptz, synchronizer_id text, payload jsonb")


@dataclass
class IoBenchResult:
    rows: int
    raw_copy_rows_s: float
    write_path_rows_s: float
    batched_upsert_rows_s: float

    def report(self) -> str:
        return (
            f"{self.rows:,} Canton-like rows: raw COPY into an unlogged table {self.raw_copy_rows_s:,.0f} rows/s; "
            f"write path (staging + checks + replace + ledger) {self.write_path_rows_s:,.0f} rows/s "
            f"= {self.write_path_rows_s / self.raw_copy_rows_s:.2f} x raw COPY; 500-row batched upserts "
            f"{self.batched_upsert_rows_s:,.0f} rows/s; write path / batched upserts = "
            f"{self.write_path_rows_s / self.batched_upsert_rows_s:.1f}x"
        )


def make_rows(n: int, days: int) -> list[list[tuple]]:
    """`days` partitions of Canton-shaped rows (text key, timestamps, a nested jsonb payload of ~300 bytes)."""
    per_day = n // days
    out = []
    for d in range(days):
        day = START + timedelta(days=d)
        batch = []
        for i in range(per_day):
            ts = day + timedelta(microseconds=i * 86_400_000_000 // per_day)
            uid = f"1220{d:06d}{i:010d}"
            payload = orjson.dumps(
                {
                    "update_id": uid,
                    "events_by_id": {
                        f"{uid}:0": {
                            "event_type": "created_event",
                            "template_id": "pkg:Splice.Amulet:Amulet",
                            "create_arguments": {"owner": f"party-{i % 40}::1220abcdef", "amount": f"{i * 1.5:.10f}"},
                        }
                    },
                }
            ).decode()
            batch.append((uid, 1, ts, "global-domain::1220b1431ef2", payload))
        out.append(batch)
    return out


def _reset(conn: psycopg.Connection) -> None:
    conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
    conn.execute("CREATE SCHEMA bench")
    writer._ensured.clear()


def raw_copy(dsn: str, batches: list[list[tuple]], columns: sql.Composable = COLUMNS) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        _reset(conn)
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE bench.raw ({})").format(columns))
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy("COPY bench.raw FROM STDIN") as copy:
            for batch in batches:
                for row in batch:
                    copy.write_row(row)
        return time.perf_counter() - started


def write_path(dsn: str, batches: list[list[tuple]]) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        _reset(conn)
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for d, batch in enumerate(batches):
            day = START + timedelta(days=d)
            target = Target(
                SPEC, "bench/updates", day.date().isoformat(), day, day + timedelta(days=1), "run:bench", "bench"
            )
            write_partition(conn, target, batch)
        return time.perf_counter() - started


def batched_upserts(dsn: str, batches: list[list[tuple]], size: int = 500) -> float:
    """What the replaced scripts did: multi-row INSERT … ON CONFLICT DO UPDATE, 500 rows a statement."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        _reset(conn)
        conn.execute(sql.SQL("CREATE TABLE bench.updates ({}, PRIMARY KEY (update_id))").format(COLUMNS))
    one = sql.SQL("(%s, %s, %s, %s, %s)")
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for batch in batches:
            for lo in range(0, len(batch), size):
                chunk = batch[lo : lo + size]
                stmt = sql.SQL(
                    "INSERT INTO bench.updates VALUES {} ON CONFLICT (update_id) DO UPDATE SET "
                    "migration_id = EXCLUDED.migration_id, record_time = EXCLUDED.record_time, "
                    "synchronizer_id = EXCLUDED.synchronizer_id, payload = EXCLUDED.payload"
                ).format(sql.SQL(", ").join([one] * len(chunk)))
                conn.execute(stmt, [v for row in chunk for v in row])
                conn.commit()
        return time.perf_counter() - started


def run(dsn: str, rows: int = 1_000_000, days: int = 10) -> IoBenchResult:
    batches = make_rows(rows, days)
    n = sum(len(b) for b in batches)
    raw = raw_copy(dsn, batches)
    path = write_path(dsn, batches)
    upserts = batched_upserts(dsn, batches)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench CASCADE")
    return IoBenchResult(n, n / raw, n / path, n / upserts)
