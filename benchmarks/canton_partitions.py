"""Canton write-path candidate (c) of issue 19, point 2: per-day table partitions swapped in, on a run's own updates.

Today a day of `canton.updates` is written into one big table: COPY into TEMP staging, the three checks (NULL keys,
duplicate keys, rows outside the day), DELETE of the day, INSERT from staging. The candidate partitions the table by
`record_time`, one partition a day as Dagster's daily partitions: a day is written by creating a fresh table (with a
CHECK of the day's window, or without one), COPYing the rows straight into it, building its primary key and indexes,
and swapping it in (DETACH + DROP of the day's old partition, then ATTACH PARTITION). The primary key must then be
(update_id, record_time); the keys and CHECK take over the three checks. A first load is also compared with today's
path as a long first load runs it (the secondary index deferred and built once at the end).

Both a first load (empty tables) and a replace (every day already stored once, untimed, then rewritten) are timed,
one transaction a day, after a CHECKPOINT; the variants take turns, so drift hits them alike. Before timing, today's
path and the partitioned one are run once (first load, then replace) and their stored rows compared.
Run after `backfill-platform bench canton` (it needs `canton.updates`): `python -m benchmarks.canton_partitions`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import LiteralString

import psycopg
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers import sql as q
from backfill_platform.io_managers import writer
from backfill_platform.sources.canton.assets import UpdateRow
from backfill_platform.sources.canton.tables import UPDATES
from benchmarks.canton_events import confirmed, rows_in_one_only, run_days_by_day

COLUMNS = tuple(UPDATES.column_names)
_names = itertools.count()
_current: dict[tuple[str, date], sql.Identifier] = {}  # each schema's partition of each day


@dataclasses.dataclass
class Timing:
    total: float = 0.0
    swap: float = 0.0  # DETACH + DROP + ATTACH (partitions), or DELETE + INSERT (today)
    build: float = 0.0  # the day table's key and indexes (partitions), or the deferred index at the end (today)


def _window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def create(conn: psycopg.Connection, schema: LiteralString, partitioned: bool) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for key in [k for k in _current if k[0] == schema]:
        del _current[key]
    if not partitioned:
        conn.execute(f"CREATE TABLE {schema}.updates (LIKE canton.updates INCLUDING ALL)")
        return
    conn.execute(
        f"CREATE TABLE {schema}.updates (LIKE canton.updates INCLUDING DEFAULTS INCLUDING STORAGE "
        "INCLUDING COMPRESSION) PARTITION BY RANGE (record_time)"
    )
    conn.execute(f"ALTER TABLE {schema}.updates ADD PRIMARY KEY (update_id, record_time)")
    conn.execute(f"CREATE INDEX ON {schema}.updates (record_time)")
    conn.execute(f"CREATE INDEX ON {schema}.updates (migration_id, record_time)")


def write_today(cur: psycopg.Cursor, schema: LiteralString, day: date, rows: list[UpdateRow], timing: Timing) -> None:
    """As the IO manager: TEMP staging, COPY, the three checks, DELETE of the day, INSERT."""
    spec = dataclasses.replace(UPDATES, schema=schema)
    start, end = _window(day)
    cur.execute(q.create_staging(spec))
    writer._copy(cur, spec, COLUMNS, rows)
    writer._check_staging(cur, spec, writer.Target(spec, "bench", day.isoformat(), start, end, "bench", "bench"))
    swap_started = time.perf_counter()
    cur.execute(q.delete_slice(spec), {"start": start, "end": end})
    cur.execute(q.insert_from_staging(spec))
    timing.swap += time.perf_counter() - swap_started


def write_partition(
    cur: psycopg.Cursor, schema: LiteralString, day: date, rows: list[UpdateRow], timing: Timing, check: bool
) -> None:
    """A fresh table for the day, COPY straight in, keys and indexes built, then swapped for the old partition."""
    start, end = _window(day)
    parent = sql.Identifier(schema, "updates")
    table = sql.Identifier(schema, f"updates_{day:%Y%m%d}_{next(_names)}")
    lo, hi = sql.Literal(start.isoformat()), sql.Literal(end.isoformat())
    cur.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION)").format(
            table, parent
        )
    )
    if check:  # lets ATTACH skip its validation scan (record_time is NOT NULL already, from the parent's key)
        cur.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CHECK (record_time >= {}::timestamptz AND record_time < {}::timestamptz)"
            ).format(table, lo, hi)
        )
    with cur.copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(table, sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
    ) as copy:
        for row in rows:  # the per-row work of writer._copy for a jsonb column (payload is already text)
            row = list(row)
            if isinstance(row[-1], bytes):
                row[-1] = row[-1].decode()
            copy.write_row(row)
    build_started = time.perf_counter()
    cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (update_id, record_time)").format(table))
    cur.execute(sql.SQL("CREATE INDEX ON {} (record_time)").format(table))
    cur.execute(sql.SQL("CREATE INDEX ON {} (migration_id, record_time)").format(table))
    swap_started = time.perf_counter()
    timing.build += swap_started - build_started
    old = _current.get((schema, day))
    if old is not None:
        cur.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, old))
        cur.execute(sql.SQL("DROP TABLE {}").format(old))
    cur.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(parent, table, lo, hi)
    )
    timing.swap += time.perf_counter() - swap_started
    _current[schema, day] = table  # (the benchmark's connection is autocommit: a failed day raises and ends the run)


Writer = Callable[[psycopg.Cursor, LiteralString, date, list[UpdateRow], Timing], None]

TODAY = "one table, staging + DELETE + INSERT (today)"
# Today a first load of >= defer_indexes_from days keeps the key and the record_time index but builds the secondary
# (migration_id, record_time) index once at the end: for first loads that is today's path too.
TODAY_DEFERRED = "one table, secondary index deferred to the end (today, long first loads)"
WRITERS: dict[str, tuple[bool, Writer]] = {
    TODAY: (False, write_today),
    TODAY_DEFERRED: (False, write_today),
    "day partitions swapped, with CHECK (c)": (
        True,
        lambda cur, s, d, r, t: write_partition(cur, s, d, r, t, check=True),
    ),
    "day partitions swapped, no CHECK: ATTACH scans (c')": (
        True,
        lambda cur, s, d, r, t: write_partition(cur, s, d, r, t, check=False),
    ),
}


def variant(
    dsn: str, days: dict[date, list[UpdateRow]], name: str, replace: bool, keep: LiteralString | None = None
) -> Timing:
    """Seconds to write every day, one transaction each: into empty tables, or over the same days stored once."""
    partitioned, write = WRITERS[name]
    schema = keep or "bench_part"
    timing = Timing()
    with psycopg.connect(dsn, autocommit=True) as conn:
        create(conn, schema, partitioned)
        if name == TODAY_DEFERRED:
            conn.execute(f"DROP INDEX {schema}.updates_migration_id_record_time_idx")
        if replace:
            for day, rows in days.items():
                with conn.transaction(), conn.cursor() as cur:
                    write(cur, schema, day, rows, Timing())
        conn.execute("CHECKPOINT")
        for day, rows in days.items():
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                write(cur, schema, day, rows, timing)
            timing.total += time.perf_counter() - started
        if name == TODAY_DEFERRED:
            started = time.perf_counter()
            conn.execute(
                f"CREATE INDEX updates_migration_id_record_time_idx ON {schema}.updates (migration_id, record_time)"
            )
            timing.build = time.perf_counter() - started
            timing.total += timing.build
        if keep is None:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return timing


def compare(dsn: str, days: dict[date, list[UpdateRow]]) -> str:
    """Today's path and the partitioned one (with CHECK), first load then replace: the stored rows must be equal."""
    variant(dsn, days, TODAY, replace=True, keep="bench_part_today")
    variant(dsn, days, "day partitions swapped, with CHECK (c)", replace=True, keep="bench_part_c")
    cols = ", ".join(COLUMNS)
    with psycopg.connect(dsn, autocommit=True) as conn:

        def one(query: str) -> int:
            return conn.execute(query).fetchone()[0]  # type: ignore[index]

        n_today, n_c = (
            one("SELECT count(*) FROM bench_part_today.updates"),
            one("SELECT count(*) FROM bench_part_c.updates"),
        )
        parts = one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'bench_part_c.updates'::regclass")
        differ = rows_in_one_only(conn, cols, "updates", "bench_part_today", "bench_part_c")
        conn.execute("DROP SCHEMA bench_part_today CASCADE")
        conn.execute("DROP SCHEMA bench_part_c CASCADE")
    same = n_today == n_c == sum(map(len, days.values())) and differ == 0 and parts == len(days)
    return confirmed(
        same,
        f"updates after first load + replace {'EQUAL' if same else 'DIFFERENT'}: today {n_today:,} rows, "
        f"partitioned {n_c:,} rows in {parts} partitions; rows differing in any column {differ}",
    )


def main(days: int = 5, repeats: int = 5) -> None:
    dsn = database_url()
    grouped = run_days_by_day(dsn, days)
    print(compare(dsn, grouped))
    times: dict[tuple[bool, str], list[Timing]] = {
        (r, n): [] for r in (False, True) for n in WRITERS if not (r and n == TODAY_DEFERRED)
    }
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        for replace, name in times:
            times[replace, name].append(variant(dsn, grouped, name, replace))
            load.append(os.getloadavg()[0])
    updates = sum(map(len, grouped.values()))
    print(
        f"{updates:,} updates of {len(grouped)} days, one transaction a day, {repeats} repetitions each, in turn; "
        f"load average (1 min) {min(load):.2f}–{max(load):.2f}"
    )
    for replace in (False, True):
        print("  replace of stored days:" if replace else "  first load (empty tables):")
        base = statistics.median(t.total for t in times[replace, TODAY])
        for name in [n for r, n in times if r == replace]:
            timings = times[replace, name]
            total = statistics.median(t.total for t in timings)
            swap = statistics.median(t.swap for t in timings)
            build = statistics.median(t.build for t in timings)
            each = ", ".join(f"{t.total:.2f}" for t in timings)
            if name in (TODAY, TODAY_DEFERRED):
                steps = f"DELETE + INSERT median {swap:.2f} s" + (f", index at the end {build:.2f} s" if build else "")
            else:
                steps = f"key + indexes built {build:.2f} s, DETACH + DROP + ATTACH {swap:.2f} s (medians)"
            print(f"    {name}: median {total:.2f} s ({total / base:.2f}× today), all {each}; {steps}")


if __name__ == "__main__":
    main()
