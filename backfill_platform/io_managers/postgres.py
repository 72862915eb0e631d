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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from datetime import date, datetime
from typing import Any

import dagster as dg
import pandas as pd
import psycopg
from pydantic import Field

from backfill_platform.database import database_url
from backfill_platform.io_managers import ledger
from backfill_platform.io_managers import sql as q
from backfill_platform.io_managers.spec import (
    Batches,
    Derived,
    PartitionBatch,
    SqlInsert,
    TableSpec,
    WrittenAlong,
    spec_for,
)
from backfill_platform.io_managers.writer import (
    Target,
    WriteError,
    WriteStats,
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
    writers: int = Field(
        default=2,
        description="Partitions written at once, each on its own connection and in its own transaction (one per "
        "core: COPY, jsonb parsing and SQL derivations use one PostgreSQL core per connection).",
    )

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

    def _targets(
        self, context: dg.OutputContext, spec: TableSpec, asset_key: dg.AssetKey | None = None
    ) -> dict[str, Target]:
        run = context.step_context.dagster_run
        common = {
            "spec": spec,
            "asset": (asset_key or context.asset_key).to_user_string(),
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
        if isinstance(obj, WrittenAlong):
            self._report_written_along(context, obj, targets)
            return
        if isinstance(obj, pd.DataFrame):
            batches: Any = self._split_frame(obj, spec, targets)
        elif isinstance(obj, SqlInsert):
            batches = (PartitionBatch(key, obj) for key in targets)
        elif isinstance(obj, Batches):
            batches = obj
        else:
            raise WriteError(
                f"asset {context.asset_key.to_user_string()}: cannot store {type(obj).__name__}; "
                "return a DataFrame, Batches, SqlInsert or WrittenAlong"
            )
        derived = self._derived_targets(context, obj.derived if isinstance(obj, Batches) else ())
        totals = {"rows": 0, "bytes": 0, "partitions": 0}
        started = time.perf_counter()
        targets = self._maybe_defer(context, spec, targets)
        derived = [(self._maybe_defer(context, d_spec, d_targets), select) for d_spec, d_targets, select in derived]
        every_target = (*targets.values(), *(t for d, _ in derived for t in d.values()))
        deferred = [t.spec for t in every_target if t.defer_indexes]
        try:
            for batch, stats in self._write_all(context, batches, targets, derived):
                self._report(context, context.asset_key, batch, stats)
                for asset, rows in stats.derived.items():
                    context.log_event(
                        dg.AssetMaterialization(
                            asset_key=dg.AssetKey.from_user_string(asset),
                            partition=batch.partition_key,
                            metadata={"rows": rows, "written_along": context.asset_key.to_user_string()},
                        )
                    )
                totals["rows"] += stats.rows
                totals["bytes"] += stats.bytes
                totals["partitions"] += 1
        finally:
            if deferred:  # even when a partition failed: the table is never left without its indexes
                build_started = time.perf_counter()
                self._build_indexes(list(dict.fromkeys(deferred)))
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

    def _build_indexes(self, specs: list[TableSpec]) -> None:
        """Each deferred index in its own transaction, `writers` at a time (a build uses one core)."""
        statements = [(spec, index) for spec in specs for index in spec.indexes]

        def build(job: tuple[TableSpec, tuple[str, ...]]) -> None:
            with psycopg.connect(self._dsn(), autocommit=True) as conn:
                conn.execute(q.create_index(*job))

        with ThreadPoolExecutor(max_workers=max(1, self.writers), thread_name_prefix="index-build") as pool:
            for future in [pool.submit(build, job) for job in statements]:
                future.result()

    def _derived_targets(
        self, context: dg.OutputContext, derived: tuple[Derived, ...]
    ) -> list[tuple[TableSpec, dict[str, Target], Any]]:
        out = []
        for d in derived:
            key = dg.AssetKey(list(d.asset_key))
            d_spec = self._spec(key, context.has_asset_partitions)
            out.append((d_spec, self._targets(context, d_spec, key), d.select))
        return out

    def _maybe_defer(self, context: dg.OutputContext, spec: TableSpec, targets: dict[str, Target]) -> dict[str, Target]:
        if not self._defer_indexes(spec, targets):
            return targets
        context.log.info(
            f"{spec.qualified}: {len(targets)} partitions into an empty table, "
            "secondary indexes are built once at the end"
        )
        return {k: dataclasses.replace(t, defer_indexes=True) for k, t in targets.items()}

    def _report_written_along(self, context: dg.OutputContext, obj: WrittenAlong, targets: dict[str, Target]) -> None:
        """Its partitions were committed (and reported) with `obj.source`: sum what the ledger says of this run."""
        rows = ledger.run_rows(self._dsn(), context.asset_key, context.run_id, list(targets))
        context.add_output_metadata(
            {
                "table": next(iter(targets.values())).spec.qualified,
                "written_along": obj.source,
                "rows_written": sum(rows.values()),
                "partitions_written": len(rows),
            }
        )

    def _defer_indexes(self, spec: TableSpec, targets: dict[str, Target]) -> bool:
        if not spec.indexes or not spec.defer_indexes_from or len(targets) < spec.defer_indexes_from:
            return False
        with psycopg.connect(self._dsn()) as conn:
            return table_is_empty(conn, spec)

    def _write_all(
        self,
        context: dg.OutputContext,
        batches: Any,
        targets: dict[str, Target],
        derived: list[tuple[dict[str, Target], Any]],
    ) -> Iterator[tuple[PartitionBatch, WriteStats]]:
        """Commit each partition in its own transaction, `writers` partitions at once on their own connections.

        At most `writers` batches are in flight, so a lazy `Batches` still holds a bounded number of partitions; the
        commit order may differ from the partition order, which the per-partition ledger makes safe to resume."""

        def target_of(batch: PartitionBatch) -> Target:
            target = targets.get(batch.partition_key)
            if target is None:
                raise WriteError(
                    f"asset {context.asset_key.to_user_string()}: batch for partition "
                    f"{batch.partition_key} is outside this run's partitions"
                )
            return target

        def derived_of(batch: PartitionBatch) -> list[tuple[Target, Any]]:
            return [(d_targets[batch.partition_key], select) for d_targets, select in derived]

        if self.writers <= 1:
            with psycopg.connect(self._dsn()) as conn:
                for batch in batches:
                    yield batch, write_partition(conn, target_of(batch), batch.rows, derived=derived_of(batch))
            return
        local = threading.local()
        opened: list[psycopg.Connection] = []

        def write(batch: PartitionBatch) -> tuple[PartitionBatch, WriteStats]:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(self._dsn())
                opened.append(local.conn)
            return batch, write_partition(local.conn, target_of(batch), batch.rows, derived=derived_of(batch))

        try:
            with ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="partition-writer") as pool:
                # Dagster's context is not thread-safe: results are reported from this thread as they complete.
                in_flight: set[Future] = set()
                for batch in batches:
                    in_flight.add(pool.submit(write, batch))
                    if len(in_flight) >= self.writers:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        yield from (f.result() for f in done)
                yield from (f.result() for f in as_completed(in_flight))
        finally:
            for conn in opened:
                conn.close()

    @staticmethod
    def _report(context: dg.OutputContext, asset_key: dg.AssetKey, batch: PartitionBatch, stats: WriteStats) -> None:
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
            dg.AssetMaterialization(asset_key=asset_key, partition=batch.partition_key, metadata=metadata)
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
