"""Canton write-path candidate (b) of issue 19, point 2: where the events are computed, on a run's own updates.

Today each day's `canton.events` rows are derived in SQL (`jsonb_each` …) from the day's staged updates, in the
updates' transaction. The candidate builds the same rows in Python (msgspec over each update's payload, arguments
passed through as raw JSON) and COPYs them straight into the events table, so PostgreSQL walks no jsonb trees for
them. Both variants write the same days, one transaction a day as the IO manager does (staging, COPY, the three
checks, DELETE + INSERT of the updates, then the events), into fresh copies of `canton.updates` / `canton.events`
with their keys and indexes, after a CHECKPOINT; they take turns, so drift hits them alike. Before timing, both are
run once and their events compared (count, keys, and every column).
Run after `backfill-platform bench canton` (it needs its tables): `python -m benchmarks.canton_events`.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, LiteralString

import msgspec
import psycopg
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers import sql as q
from backfill_platform.io_managers import writer
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sources.canton.assets import UpdateRow
from backfill_platform.sources.canton.tables import EVENTS, UPDATES
from benchmarks.canton import run_rows

EVENT_COLUMNS = tuple(EVENTS.column_names)


_ABSENT = msgspec.Raw(b"")


class _Event(msgspec.Struct):
    """The fields of an event body the events table reads; the rest of the body is skipped unparsed."""

    event_id: str | None = None
    event_type: str | None = None
    template_id: str | None = None
    contract_id: str | None = None
    choice: str | None = None
    consuming: bool | None = None
    child_event_ids: list[str] | None = None  # absent → NULL, as `CASE WHEN body ? 'child_event_ids'`
    # absent → empty (msgspec takes no Raw in a union); JSON null stays `null`, as `body->'create_arguments'`
    create_arguments: msgspec.Raw = _ABSENT
    choice_argument: msgspec.Raw = _ABSENT


class _Created(msgspec.Struct):
    created_event: _Event | None = None


class _Tree(msgspec.Struct):
    events_by_id: dict[str, _Event] = {}
    event: _Created | None = None


_tree = msgspec.json.Decoder(_Tree)


def event_rows(updates: Iterable[UpdateRow]) -> list[tuple[Any, ...]]:
    """One day's `canton.events` rows built in Python, column for column what EVENTS' derivation selects."""
    found: list[tuple[UpdateRow, str | None, _Event]] = []
    for u in updates:
        tree = _tree.decode(u.payload)
        if u.kind == "transaction":
            found.extend((u, event_id, body) for event_id, body in tree.events_by_id.items())
        elif u.kind == "reassignment" and tree.event is not None and tree.event.created_event is not None:
            found.append((u, tree.event.created_event.event_id, tree.event.created_event))
    parent = {child: event_id for _, event_id, body in found for child in body.child_event_ids or ()}
    rows = []
    for u, event_id, body in found:
        arguments = body.create_arguments if len(body.create_arguments) else body.choice_argument
        rows.append(
            (
                event_id,
                u.update_id,
                u.record_time,
                u.migration_id,
                body.event_type,
                body.template_id,
                body.contract_id,
                body.choice,
                body.consuming,
                parent.get(event_id) if event_id is not None else None,
                body.child_event_ids,
                bytes(arguments).decode() if len(arguments) else None,
            )
        )
    return rows


def run_days_by_day(dsn: str, days: int) -> dict[date, list[UpdateRow]]:
    """A benchmark run's own updates of `days` days from 2024-07-01 at scale 10, grouped by UTC day."""
    rows, _ = run_rows(dsn, SandboxConfig(scale=10.0), [date(2024, 7, 1) + timedelta(days=d) for d in range(days)])
    return by_day([UpdateRow(*r) for r in rows])


def by_day(rows: list[UpdateRow]) -> dict[date, list[UpdateRow]]:
    days: dict[date, list[UpdateRow]] = {}
    for row in rows:
        days.setdefault(date.fromisoformat(row.record_time[:10]), []).append(row)
    return dict(sorted(days.items()))


def _specs(schema: LiteralString) -> tuple[Any, Any]:
    updates = dataclasses.replace(UPDATES, schema=schema)
    return updates, dataclasses.replace(EVENTS, schema=schema, derived_from=None, columns=_plain(EVENTS))


def _plain(spec: Any) -> tuple[Any, ...]:
    return tuple(dataclasses.replace(c, expr=None) for c in spec.columns)


@dataclasses.dataclass
class Timing:
    total: float = 0.0
    events: float = 0.0  # the events step alone: INSERT … SELECT, or Python build + COPY
    python: float = 0.0  # of which building the rows in Python


def variant(
    dsn: str, days: dict[date, list[UpdateRow]], python: bool, schema: LiteralString, keep: bool = False
) -> Timing:
    """Write every day (one transaction each, as the IO manager does) into fresh tables; seconds summed."""
    updates, events = _specs(schema)
    derive = q.insert_select(events, EVENTS.derive_select(q.STAGING))
    timing = Timing()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(f"CREATE TABLE {schema}.updates (LIKE canton.updates INCLUDING ALL)")
        conn.execute(f"CREATE TABLE {schema}.events (LIKE canton.events INCLUDING ALL)")
        conn.execute("CHECKPOINT")
        for day, rows in days.items():
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            bounds = {"start": start, "end": start + timedelta(days=1)}
            target = writer.Target(updates, "bench", day.isoformat(), bounds["start"], bounds["end"], "bench", "bench")
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(q.create_staging(updates))
                writer._copy(cur, updates, tuple(UPDATES.column_names), rows)
                writer._check_staging(cur, updates, target)
                cur.execute(q.delete_slice(updates), bounds)
                cur.execute(q.insert_from_staging(updates))
                events_started = time.perf_counter()
                cur.execute(q.delete_slice(events), bounds)
                if python:
                    built = event_rows(rows)
                    timing.python += time.perf_counter() - events_started
                    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(events.ident, _cols())) as copy:
                        for row in built:
                            copy.write_row(row)
                else:
                    cur.execute(derive, bounds)
                timing.events += time.perf_counter() - events_started
            timing.total += time.perf_counter() - started
        if not keep:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return timing


def _cols() -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in EVENT_COLUMNS)


def rows_in_one_only(conn: psycopg.Connection, cols: str, table: str, a: str, b: str) -> int:
    """Rows (as `cols`) of `a.table` missing from `b.table`, plus the other way round: 0 when the two are equal."""
    query = "SELECT count(*) FROM (SELECT {c} FROM {x}.{t} EXCEPT SELECT {c} FROM {y}.{t}) d"
    return sum(
        conn.execute(query.format(c=cols, x=x, y=y, t=table)).fetchone()[0]  # type: ignore[index, arg-type]
        for x, y in ((a, b), (b, a))
    )


def confirmed(same: bool, message: str) -> str:
    """The comparison's line; a difference stops the benchmark with it (timing unequal results means nothing)."""
    if not same:
        raise SystemExit(message)
    return message


def compare(dsn: str, days: dict[date, list[UpdateRow]]) -> str:
    """Both variants once into two schemas; their events must match in count, keys and every column."""
    variant(dsn, days, python=False, schema="bench_ev_sql", keep=True)
    variant(dsn, days, python=True, schema="bench_ev_py", keep=True)
    cols = ", ".join(EVENT_COLUMNS)
    with psycopg.connect(dsn, autocommit=True) as conn:

        def one(query: str) -> int:
            return conn.execute(query).fetchone()[0]  # type: ignore[index]

        n_sql, n_py = one("SELECT count(*) FROM bench_ev_sql.events"), one("SELECT count(*) FROM bench_ev_py.events")
        keys = rows_in_one_only(conn, "event_id", "events", "bench_ev_sql", "bench_ev_py")
        rows = rows_in_one_only(conn, cols, "events", "bench_ev_sql", "bench_ev_py")
        conn.execute("DROP SCHEMA bench_ev_sql CASCADE")
        conn.execute("DROP SCHEMA bench_ev_py CASCADE")
    same = n_sql == n_py and keys == 0 and rows == 0
    verdict = "EQUAL" if same else "DIFFERENT"
    return confirmed(
        same,
        f"events {verdict}: SQL-derived {n_sql:,} rows, Python-built {n_py:,} rows; keys in one and not the other "
        f"{keys}; rows differing in any column {rows}",
    )


def main(days: int = 5, repeats: int = 5) -> None:
    dsn = database_url()
    grouped = run_days_by_day(dsn, days)
    print(compare(dsn, grouped))
    variants: dict[str, Callable[[], Timing]] = {
        "events derived in SQL from staging (today)": lambda: variant(dsn, grouped, False, "bench_ev"),
        "events built in Python, COPYed (b)": lambda: variant(dsn, grouped, True, "bench_ev"),
    }
    times: dict[str, list[Timing]] = {name: [] for name in variants}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(run())
            load.append(os.getloadavg()[0])
    base = times["events derived in SQL from staging (today)"]
    base_total = statistics.median(t.total for t in base)
    base_events = statistics.median(t.events for t in base)
    n_events = sum(len(event_rows(r)) for r in grouped.values())
    updates = sum(map(len, grouped.values()))
    print(
        f"{updates:,} updates + {n_events:,} events of {len(grouped)} days, one transaction a day, {repeats} "
        f"repetitions each, in turn; load average (1 min) {min(load):.2f}–{max(load):.2f}"
    )
    for name, timings in times.items():
        total = statistics.median(t.total for t in timings)
        events = statistics.median(t.events for t in timings)
        python = statistics.median(t.python for t in timings)
        each = ", ".join(f"{t.total:.2f}" for t in timings)
        print(
            f"  {name}: whole write median {total:.2f} s ({total / base_total:.2f}× today), all {each}; events "
            f"step median {events:.2f} s ({events / base_events:.2f}× today), of which Python build {python:.2f} s"
        )


if __name__ == "__main__":
    main()
