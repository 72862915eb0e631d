"""Write one partition atomically: lock the slice, COPY into staging, check, replace or merge, record the ledger.

Everything happens in one transaction, so a killed process leaves no half-written partition and readers see a
partition's rows all at once or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
import pandas as pd
import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb, set_json_dumps

from backfill_platform.database import one_row
from backfill_platform.io_managers import ledger
from backfill_platform.io_managers import sql as q
from backfill_platform.io_managers.spec import SqlInsert, TableSpec, literal

set_json_dumps(orjson.dumps)  # dict/list values of jsonb columns are dumped by orjson


INTEGER_TYPES = frozenset({"smallint", "integer", "int", "int2", "int4", "int8", "bigint"})


class WriteError(Exception):
    """Bad data for a table: names the asset, the partition and the column; nothing of that partition was written."""


@dataclass(frozen=True)
class Target:
    """Where a partition goes: the table, the slice bounds, and who is writing (for the ledger)."""

    spec: TableSpec
    asset: str
    partition: str  # ledger.UNPARTITIONED for a whole table
    start: date | datetime | None
    end: date | datetime | None
    lineage: str
    run_id: str
    defer_indexes: bool = False  # secondary indexes are built once after the whole run (see TableSpec)
    members: tuple[str, ...] | None = None  # a table with a member_column: whose rows this batch replaces
    unsettled: tuple[str, ...] = ()

    def where(self, message: str) -> str:
        part = "" if self.partition == ledger.UNPARTITIONED else f" partition {self.partition}"
        return f"asset {self.asset}{part}: {message}"


@dataclass(frozen=True)
class WriteStats:
    rows: int
    bytes: int
    seconds: float
    children: Mapping[str, WriteStats] = field(default_factory=dict)  # what each child table got, by asset


_ensured: set[tuple[str, str, bool]] = set()


def ensure_table(conn: psycopg.Connection, spec: TableSpec, asset: str, indexes: bool = True) -> None:
    """Create schema and table on first write; add new nullable columns; refuse changed keys or types.

    Declared secondary indexes are created here too (IF NOT EXISTS), so a run killed while it deferred them gets
    them back from the next run that touches the table."""
    if _ensured_key(conn, spec, indexes) in _ensured:
        return
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ddl:{spec.qualified}",))
    conn.execute(q.create_schema(spec.schema))
    existing = {
        name: (typ, nullable) for name, typ, nullable in conn.execute(q.existing_columns(), {"table": spec.qualified})
    }
    if not existing:
        conn.execute(q.create_table(spec))
    else:
        pk = [r[0] for r in conn.execute(q.existing_primary_key(), {"table": spec.qualified})]
        if tuple(pk) != spec.primary_key:
            raise WriteError(
                f"asset {asset}: table {spec.qualified} has primary key ({', '.join(pk)}) but the spec declares "
                f"({', '.join(spec.primary_key)}); migrate the table by hand or restore the spec"
            )
        for column in spec.columns:
            if column.name not in existing:
                if not column.nullable:
                    raise WriteError(
                        f"asset {asset}: new column {column.name} of {spec.qualified} must be nullable to be added"
                    )
                conn.execute(q.add_column(spec, column.name))
                continue
            wanted = one_row(conn, q.canonical_type(), {"type": column.type})[0]
            have = existing[column.name][0]
            if wanted is not None and have.split("(")[0] != wanted.split("(")[0]:
                raise WriteError(
                    f"asset {asset}: column {column.name} of {spec.qualified} is {have} but the spec declares "
                    f"{column.type}; a type change is refused, migrate the table by hand"
                )
    if spec.partition_column and spec.partition_column != spec.primary_key[0]:
        conn.execute(q.create_index(spec, (spec.partition_column,)))
    for column in spec.hash_indexes:  # the B-tree this platform built before the column's index became a hash one
        conn.execute(q.drop_index(spec, (column,)))
    if indexes:
        build_indexes(conn, spec)
    ledger.ensure(conn)


def _ensured_key(conn: psycopg.Connection, spec: TableSpec, indexes: bool) -> tuple[str, str, bool]:
    return (conn.info.dsn, spec.qualified, indexes)


def build_indexes(conn: psycopg.Connection, spec: TableSpec) -> None:
    for columns, method in spec.secondary_indexes:
        conn.execute(q.create_index(spec, columns, method))


def table_is_empty(conn: psycopg.Connection, spec: TableSpec) -> bool:
    if one_row(conn, "SELECT to_regclass(%s)", (spec.qualified,))[0] is None:
        return True
    return not one_row(conn, sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(spec.ident))[0]


def _jsonb_columns(spec: TableSpec, columns: Sequence[str]) -> list[int]:
    return [i for i, c in enumerate(columns) if spec.column(c).type.lower() == "jsonb"]


def _frame_rows(frame: pd.DataFrame, spec: TableSpec, target: Target) -> tuple[tuple[str, ...], Iterable[tuple]]:
    missing = [k for k in spec.primary_key if k not in frame.columns]
    if missing:
        raise WriteError(target.where(f"key column {missing[0]} is missing from the DataFrame"))
    unknown = [c for c in frame.columns if c not in spec.column_names]
    if unknown:
        raise WriteError(target.where(f"column {unknown[0]} is not declared for {spec.qualified}"))
    columns = tuple(frame.columns)
    integers = [c for c in columns if spec.column(c).type.lower() in INTEGER_TYPES and frame[c].dtype.kind == "f"]
    if integers:  # pandas turns integers with gaps into floats; COPY wants 3, not 3.0
        frame = frame.astype(dict.fromkeys(integers, "Int64"))
    clean = frame.astype(object).where(frame.notna(), None)  # NaN/NaT/NA → NULL
    return columns, clean.itertuples(index=False, name=None)


def _check_columns(spec: TableSpec, columns: Sequence[str], target: Target) -> None:
    unknown = [c for c in columns if c not in spec.column_names]
    if unknown:
        raise WriteError(target.where(f"column {unknown[0]} is not declared for {spec.qualified}"))
    missing = [k for k in spec.primary_key if k not in columns]
    if missing:
        raise WriteError(target.where(f"key column {missing[0]} is missing from the batch's columns"))


def _copy(cur: psycopg.Cursor, spec: TableSpec, columns: tuple[str, ...], rows: Iterable[Sequence[Any]]) -> int:
    jsonb = _jsonb_columns(spec, columns)
    count = 0
    with cur.copy(q.copy_in(spec, columns)) as copy:
        if jsonb:
            for row in rows:
                row = list(row)
                for i in jsonb:
                    value = row[i]
                    if isinstance(value, dict | list):
                        row[i] = Jsonb(value)
                    elif isinstance(value, bytes):
                        row[i] = value.decode()
                copy.write_row(row)
                count += 1
        else:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def _check_staging(cur: psycopg.Cursor, spec: TableSpec, target: Target) -> None:
    nulls = one_row(cur, q.null_key_counts(spec))
    for key, n in zip(spec.primary_key, nulls, strict=True):
        if n:
            raise WriteError(target.where(f"key column {key} is NULL in {n} rows; every row needs its key"))
    dup = cur.execute(q.duplicate_key(spec)).fetchone()
    if dup:
        key = ", ".join(f"{k}={v!r}" for k, v in zip(spec.primary_key, dup[:-1], strict=True))
        raise WriteError(target.where(f"duplicate key ({key}) appears {dup[-1]} times in one batch; de-duplicate it"))
    if spec.member_column:
        if target.members is None:
            raise WriteError(target.where(f"the batch names no members; {spec.qualified} is by {spec.member_column}"))
        n, first = one_row(cur, q.outside_members(spec), {"members": list(target.members)})
        if n:
            raise WriteError(target.where(f"{n} rows belong to members the batch does not name (e.g. {first!r})"))
    if spec.partition_column and target.start is not None:
        n, lo, hi = one_row(cur, q.outside_window(spec), {"start": target.start, "end": target.end})
        if n:
            raise WriteError(
                target.where(
                    f"{n} rows have {spec.partition_column} outside [{target.start}, {target.end}) "
                    f"(from {lo} to {hi}); a partition may only hold its own window"
                )
            )


def write_partition(
    conn: psycopg.Connection,
    target: Target,
    data: Iterable[Sequence[Any]] | pd.DataFrame | SqlInsert,
    columns: tuple[str, ...] | None = None,
    children: Sequence[tuple[Target, sql.Composable]] = (),
) -> WriteStats:
    """Replace or merge one partition and record it in the ledger, all in one transaction.

    `children` tables (each with its SELECT over the staged rows) are written and recorded in the same transaction,
    so a partition and what is derived from it commit together or not at all."""
    spec = target.spec
    started = time.perf_counter()
    bounds = {"start": target.start, "end": target.end}
    child_stats: dict[str, WriteStats] = {}
    current = target
    _ensure_tables(conn, [target, *(c for c, _ in children)])
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(q.advisory_lock(), {"table": spec.qualified, "partition": target.partition})
            if isinstance(data, SqlInsert):
                select = sql.SQL(literal(data.select)) if isinstance(data.select, str) else data.select
                rows, size = _insert_select(cur, spec, select, {**bounds, **data.params}), 0
            else:
                if isinstance(data, pd.DataFrame):
                    columns, data = _frame_rows(data, spec, target)
                columns = columns or spec.column_names
                _check_columns(spec, columns, target)
                cur.execute(q.create_staging(spec))
                rows = _copy(cur, spec, columns, data)
                size = one_row(cur, "SELECT pg_total_relation_size('backfill_staging')")[0]
                _check_staging(cur, spec, target)
                if spec.write_mode == "replace":
                    cur.execute(_delete(spec), {**bounds, "members": list(target.members or ())})
                    cur.execute(q.insert_from_staging(spec))
                else:
                    cur.execute(q.merge_from_staging(spec))
            _record(cur, target, rows, size, time.perf_counter() - started)
            for current, select in children:
                cur.execute(q.advisory_lock(), {"table": current.spec.qualified, "partition": current.partition})
                child_started = time.perf_counter()
                n = _insert_select(cur, current.spec, select, {"start": current.start, "end": current.end})
                child_seconds = time.perf_counter() - child_started
                _record(cur, current, n, 0, child_seconds)
                child_stats[current.asset] = WriteStats(rows=n, bytes=0, seconds=child_seconds)
    except WriteError:
        raise
    except (errors.DataError, errors.IntegrityError) as exc:
        raise WriteError(current.where(_explain(exc))) from None
    return WriteStats(rows=rows, bytes=size, seconds=time.perf_counter() - started, children=child_stats)


def _delete(spec: TableSpec) -> sql.Composed:
    if spec.member_column and spec.partition_column:
        return q.delete_members_slice(spec)
    return q.delete_slice(spec) if spec.partition_column else q.delete_all(spec)


def _ensure_tables(conn: psycopg.Connection, targets: Sequence[Target]) -> None:
    """Tables, columns and indexes in a short transaction of their own, before the partition's.

    Its locks (DDL, ledger) are released before the partition waits for its rows: held across a partition whose rows
    come from a fetch still queued behind another partition's, they deadlocked two writers (measured with one
    fetch thread, BACKFILL_CANTON_STREAMS=1)."""
    todo = [t for t in targets if _ensured_key(conn, t.spec, not t.defer_indexes) not in _ensured]
    if not todo:
        return
    with conn.transaction():
        for t in todo:
            ensure_table(conn, t.spec, t.asset, indexes=not t.defer_indexes)
    # Only now, with the DDL committed, may other connections of this process skip it.
    for t in todo:
        _ensured.add(_ensured_key(conn, t.spec, not t.defer_indexes))


def _insert_select(cur: psycopg.Cursor, spec: TableSpec, select: sql.Composable, params: Mapping[str, Any]) -> int:
    """INSERT … SELECT into a partition's slice: replace deletes the slice first, merge upserts changed rows."""
    if spec.write_mode == "replace":
        bounds = {"start": params.get("start"), "end": params.get("end")}
        cur.execute(q.delete_slice(spec) if spec.partition_column else q.delete_all(spec), bounds)
        cur.execute(q.insert_select(spec, select), params)
    else:
        cur.execute(q.insert_select(spec, select) + q.upsert_tail(spec), params)
    return cur.rowcount


def _record(cur: psycopg.Cursor, target: Target, rows: int, size: int, seconds: float) -> None:
    cur.execute(
        ledger.RECORD,
        {
            "asset": target.asset,
            "partition": target.partition,
            "lineage": target.lineage,
            "run_id": target.run_id,
            "rows": rows,
            "bytes": size,
            "seconds": seconds,
            "members": None if target.members is None else list(target.members),
            "unsettled": list(target.unsettled),
        },
    )


def _explain(exc: psycopg.Error) -> str:
    """A PostgreSQL data error as one line naming the column (COPY puts it in the error's context)."""
    diag = exc.diag
    where = diag.context or ""
    column = diag.column_name or (where.split("column ", 1)[1].split(":", 1)[0] if "column " in where else None)
    first = (diag.message_primary or str(exc)).splitlines()[0]
    return f"column {column}: {first}" if column else first
