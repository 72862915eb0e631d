"""Canton write-path candidates (issue 19, point 2): one step of the write path at a time, on a run's own updates.

Each variant COPYs the same updates (as the Canton asset sends them) into a fresh copy of `canton.updates` with its
keys and index, in one transaction, after a CHECKPOINT; the variants take turns, so drift hits them alike.
Run after `backfill-platform bench canton` (it needs `canton.updates`): `python -m benchmarks.canton_copy`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from backfill_platform.database import database_url
from backfill_platform.sandbox.core import SandboxConfig
from benchmarks.canton import run_rows

COLUMNS = "update_id, migration_id, record_time, synchronizer_id, effective_at, workflow_id, kind, payload"
# jsonb in binary COPY is a version byte and the text: sent as bytea, which passes the bytes through unchanged
BINARY_TYPES = ["text", "int8", "timestamptz", "text", "timestamptz", "text", "text", "bytea"]


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _binary(row: Sequence[Any]) -> tuple:
    return (row[0], row[1], _ts(row[2]), row[3], _ts(row[4]), row[5], row[6], b"\x01" + row[7].encode())


def variant(
    dsn: str, rows: list[tuple], binary: bool = False, direct: bool = False, uncompressed: bool = False
) -> float:
    """Seconds for COPY (into TEMP staging, or straight into the target) plus the INSERT from staging."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_copy CASCADE")
        conn.execute("CREATE SCHEMA bench_copy")
        conn.execute("CREATE TABLE bench_copy.updates (LIKE canton.updates INCLUDING ALL)")
        if uncompressed:
            conn.execute("ALTER TABLE bench_copy.updates ALTER payload SET STORAGE EXTERNAL")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            into = "bench_copy.updates" if direct else "staging"
            if not direct:
                cur.execute(
                    "CREATE TEMP TABLE staging WITH (toast_tuple_target = 8160) ON COMMIT DROP AS "
                    "SELECT * FROM bench_copy.updates WITH NO DATA"
                )
            with cur.copy(f"COPY {into} ({COLUMNS}) FROM STDIN{' (FORMAT BINARY)' if binary else ''}") as copy:
                if binary:
                    copy.set_types(BINARY_TYPES)
                for row in rows:
                    copy.write_row(_binary(row) if binary else row)
            if not direct:
                cur.execute(f"INSERT INTO bench_copy.updates ({COLUMNS}) SELECT {COLUMNS} FROM staging")
        seconds = time.perf_counter() - started
        conn.execute("DROP SCHEMA bench_copy CASCADE")
    return seconds


def main(days: int = 5, repeats: int = 3) -> None:
    dsn = database_url()
    rows, _ = run_rows(dsn, SandboxConfig(scale=10.0), [date(2024, 7, 1) + timedelta(days=d) for d in range(days)])
    variants: dict[str, Callable[[], float]] = {
        "text COPY into staging (today)": lambda: variant(dsn, rows),
        "binary COPY into staging": lambda: variant(dsn, rows, binary=True),
        "text COPY straight into the target": lambda: variant(dsn, rows, direct=True),
        "payload uncompressed (STORAGE EXTERNAL)": lambda: variant(dsn, rows, uncompressed=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(run())
    base = statistics.median(times["text COPY into staging (today)"])
    print(f"{len(rows):,} updates, {repeats} repetitions each, in turn")
    for name, seconds in times.items():
        median, each = statistics.median(seconds), ", ".join(f"{s:.2f}" for s in seconds)
        print(f"  {name}: median {median:.2f} s ({median / base:.2f}× today), all {each}")


if __name__ == "__main__":
    main()
