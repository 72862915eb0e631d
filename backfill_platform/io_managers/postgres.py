"""The Postgres IO manager (roles as in dagster-duckdb's DbIOManager: table spec, pure SQL builders, writer).

It accepts a DataFrame (one partition or a whole range), `Batches` (a lazy sequence of per-partition batches, for
long ranges) or a `SqlInsert` (a derived table computed in PostgreSQL). Each partition commits on its own with its
ledger row, and is reported to Dagster at once, so a long single-run backfill turns partitions green one by one and
a failed run keeps what it committed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date, datetime
from typing import Any

import dagster as dg
import pandas as pd
import psycopg
from pydantic import Field

from backfill_platform.database import database_url
from backfill_platform.io_managers import ledger
from backfill_platform.io_managers import sql as q
from backfill_platform.io_managers.spec import Batches, PartitionBatch, SqlInsert, TableSpec, spec_for
from backfill_platform.io_managers.writer import (
    Target,
    WriteError,
    WriteStats,
    build_indexes,
    table_is_empty,
    write_partition,
)


def _bounds(spec: TableSpec, window: dg.TimeWindow) -> tuple[date | datetime, date | datetime]:
    """The slice bounds in the partition column's own type (dates for a date column)."""
    if spec.column(spec.partition_column or "").type.lower() == "date":
        return window.start.date(), window.end.date()
    return window.start, window.end


class PostgresIOManager(dg.ConfigurableIOManager):
    """Writes every asset to `<schema>.<table>` through COPY, one atomic transaction per partition."""

    database_url: str | None = Field(default=None, description="Defaults to the platform database (database.py).")
    sql_workers: int = Field(default=2, description="Connections deriving SQL partitions at once (one per core).")

    def _dsn(self) -> str:
        return self.database_url or database_url()

    @staticmethod
    def _spec(asset_key: dg.AssetKey, has_partitions: bool) -> TableSpec:
        spec = spec_for(asset_key.path)
        name = asset_key.to_user_string()
        if spec is None:
            raise WriteError(f"asset {name}: no table spec is registered for it; declare one in its source's tables.py")
        if has_partitions and not spec.partition_column:
            raise WriteError(
                f"asset {name} is partitioned but table {spec.qualified} declares no partition column; "
                "set partition_column in its TableSpec"
            )
        return spec

    def _targets(self, context: dg.OutputContext, spec: TableSpec) -> dict[str, Target]:
        run = context.step_context.dagster_run
        common = {
            "spec": spec,
            "asset": context.asset_key.to_user_string(),
            "lineage": ledger.lineage_of(run),
            "run_id": context.run_id,
        }
        if not context.has_asset_partitions:
            return {ledger.UNPARTITIONED: Target(partition=ledger.UNPARTITIONED, start=None, end=None, **common)}
        partitions_def = context.asset_partitions_def
        if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            raise WriteError(f"asset {common['asset']}: only time-window partitions are supported")
        targets = {}
        for key in context.asset_partition_keys:
            start, end = _bounds(spec, partitions_def.time_window_for_partition_key(key))
            targets[key] = Target(partition=key, start=start, end=end, **common)
        return targets

    def _split_frame(
        self, frame: pd.DataFrame, spec: TableSpec, targets: dict[str, Target]
    ) -> Iterator[PartitionBatch]:
        if len(targets) == 1:
            yield PartitionBatch(next(iter(targets)), frame)
            return
        pcol = spec.partition_column or ""
        if pcol not in frame.columns:
            raise WriteError(f"asset {next(iter(targets.values())).asset}: partition column {pcol} is missing")
        values = frame[pcol]
        for key, target in targets.items():
            yield PartitionBatch(key, frame[(values >= target.start) & (values < target.end)])

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        spec = self._spec(context.asset_key, context.has_asset_partitions)
        targets = self._targets(context, spec)
        if isinstance(obj, pd.DataFrame):
            batches: Any = self._split_frame(obj, spec, targets)
        elif isinstance(obj, SqlInsert):
            batches = (PartitionBatch(key, obj) for key in targets)
        elif isinstance(obj, Batches):
            batches = obj
        else:
            raise WriteError(
                f"asset {context.asset_key.to_user_string()}: cannot store {type(obj).__name__}; "
                "return a DataFrame, Batches or SqlInsert"
            )
        totals = {"rows": 0, "bytes": 0, "partitions": 0}
        started = time.perf_counter()
        deferred = self._defer_indexes(spec, targets)
        if deferred:
            targets = {k: dataclasses.replace(t, defer_indexes=True) for k, t in targets.items()}
            context.log.info(
                f"{spec.qualified}: {len(targets)} partitions into an empty table, secondary indexes "
                "are built once at the end"
            )
        try:
            for batch, stats in self._write_all(context, batches, targets, parallel=isinstance(obj, SqlInsert)):
                self._report(context, batch, stats)
                totals["rows"] += stats.rows
                totals["bytes"] += stats.bytes
                totals["partitions"] += 1
        finally:
            if deferred:  # even when a partition failed: the table is never left without its indexes
                build_started = time.perf_counter()
                with psycopg.connect(self._dsn()) as conn, conn.transaction():
                    build_indexes(conn, spec)
                totals["index_build_seconds"] = round(time.perf_counter() - build_started, 3)
        summary = dict(obj.summary()) if isinstance(obj, Batches) else {}
        context.add_output_metadata(
            {
                "table": spec.qualified,
                "rows_written": totals["rows"],
                "bytes_written": totals["bytes"],
                "partitions_written": totals["partitions"],
                "seconds": round(time.perf_counter() - started, 3),
                "rows_per_s": round(totals["rows"] / max(time.perf_counter() - started, 1e-9)),
                **({"index_build_seconds": totals["index_build_seconds"]} if deferred else {}),
                **summary,
            }
        )

    def _defer_indexes(self, spec: TableSpec, targets: dict[str, Target]) -> bool:
        if not spec.indexes or not spec.defer_indexes_from or len(targets) < spec.defer_indexes_from:
            return False
        with psycopg.connect(self._dsn()) as conn:
            return table_is_empty(conn, spec)

    def _write_all(
        self, context: dg.OutputContext, batches: Any, targets: dict[str, Target], parallel: bool
    ) -> Iterator[tuple[PartitionBatch, WriteStats]]:
        """Commit batches one partition at a time; derived (SQL) partitions run on `sql_workers` connections at once,
        since they are independent and PostgreSQL would otherwise use one core while the others idle."""

        def target_of(batch: PartitionBatch) -> Target:
            target = targets.get(batch.partition_key)
            if target is None:
                raise WriteError(
                    f"asset {context.asset_key.to_user_string()}: batch for partition "
                    f"{batch.partition_key} is outside this run's partitions"
                )
            return target

        if not parallel or self.sql_workers <= 1:
            with psycopg.connect(self._dsn()) as conn:
                for batch in batches:
                    yield batch, write_partition(conn, target_of(batch), batch.rows)
            return
        local = threading.local()
        opened: list[psycopg.Connection] = []

        def write(batch: PartitionBatch) -> tuple[PartitionBatch, WriteStats]:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(self._dsn())
                opened.append(local.conn)
            return batch, write_partition(local.conn, target_of(batch), batch.rows)

        try:
            with ThreadPoolExecutor(max_workers=self.sql_workers, thread_name_prefix="sql-partition") as pool:
                # Dagster's context is not thread-safe: results are reported from this thread as they complete.
                yield from (f.result() for f in as_completed([pool.submit(write, b) for b in batches]))
        finally:
            for conn in opened:
                conn.close()

    @staticmethod
    def _report(context: dg.OutputContext, batch: PartitionBatch, stats: WriteStats) -> None:
        """Tell Dagster at once: this partition is green even if a later one fails."""
        metadata = {
            "rows": stats.rows,
            "bytes": stats.bytes,
            "seconds": round(stats.seconds, 3),
            "rows_per_s": round(stats.rows / stats.seconds) if stats.seconds > 0 else 0,
            **batch.metadata,
        }
        if batch.partition_key == ledger.UNPARTITIONED:
            return
        context.log_event(
            dg.AssetMaterialization(asset_key=context.asset_key, partition=batch.partition_key, metadata=metadata)
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset_key = context.asset_key
        spec = self._spec(asset_key, context.has_asset_partitions)
        with psycopg.connect(self._dsn()) as conn, conn.cursor() as cur:
            if context.has_asset_partitions:
                start, end = _bounds(spec, context.asset_partitions_time_window)
                cur.execute(q.select_slice(spec), {"start": start, "end": end})
            else:
                cur.execute(q.select_all(spec))
            return pd.DataFrame(cur.fetchall(), columns=list(spec.column_names))
