"""The Postgres IO manager (roles as in dagster-duckdb's DbIOManager: table spec, pure SQL builders, writer).

It accepts a DataFrame (one partition or a whole range), `Batches` (a lazy sequence of per-partition batches, for
long ranges) or a `SqlInsert` (a derived table computed in PostgreSQL). Each partition commits on its own with its
ledger row, and is reported to Dagster at once, so a long single-run backfill turns partitions green one by one and
a failed run keeps what it committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
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
    IndexMethod,
    MemberBatches,
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
from backfill_platform.settings import REFETCH_TAG


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
        children: tuple[TableSpec, ...] = ()
        if isinstance(obj, pd.DataFrame):
            batches: Iterable[PartitionBatch] = self._split_frame(obj, spec, targets)
        elif isinstance(obj, SqlInsert):
            batches = (PartitionBatch(key, obj) for key in targets)
        elif isinstance(obj, Batches):
            children = obj.children
            for child in children:
                if child.derived_from is None or child.derived_from.parent != spec:
                    raise WriteError(
                        f"asset {context.asset_key.to_user_string()}: {child.qualified} is not a child of "
                        f"{spec.qualified}; declare derived_from=Derivation({spec.name.upper()}, ...) in its TableSpec"
                    )
            if isinstance(obj, MemberBatches):
                batches = obj.produce_due(self._due(context, spec, obj.members, targets))
            else:
                batches = obj.produce(self._pending(context, spec, children, targets))
        else:
            raise WriteError(
                f"asset {context.asset_key.to_user_string()}: cannot store {type(obj).__name__}; "
                "return a DataFrame, Batches, SqlInsert or WrittenAlong"
            )
        child_targets = [(c, self._targets(context, c, c.key), c.derive_select(q.STAGING)) for c in children]
        totals = RunTotals()
        targets = self._maybe_defer(context, spec, targets)
        child_targets = [(c, self._maybe_defer(context, c, t), select) for c, t, select in child_targets]
        every_target = (*targets.values(), *(t for _, d, _ in child_targets for t in d.values()))
        deferred = [t.spec for t in every_target if t.defer_indexes]
        try:
            for batch, stats in self._write_all(context, batches, targets, [(t, s) for _, t, s in child_targets]):
                self._report(context, context.asset_key, batch.partition_key, stats, batch.metadata)
                for child, child_stats in stats.children.items():
                    self._report(context, dg.AssetKey.from_user_string(child), batch.partition_key, child_stats, {})
                totals.add(stats)
        finally:
            if deferred:  # even when a partition failed: the table is never left without its indexes
                build_started = time.perf_counter()
                self._build_indexes(list(dict.fromkeys(deferred)))
                totals.index_build_seconds = round(time.perf_counter() - build_started, 3)
        summary = {"table": spec.qualified, **totals.metadata(), **(obj.summary() if isinstance(obj, Batches) else {})}
        _report_run_totals(context, summary)

    def _pending(
        self, context: dg.OutputContext, spec: TableSpec, children: tuple[TableSpec, ...], targets: dict[str, Target]
    ) -> list[str]:
        """Partitions this run's lineage has not committed, for the parent and every child, in this database."""
        keys = list(targets)
        if keys == [ledger.UNPARTITIONED]:
            return keys
        lineage = ledger.lineage_of(context.step_context.dagster_run)
        assets = [spec.key, *(c.key for c in children)]
        done = ledger.committed(self._dsn(), assets, lineage, keys)
        if done:
            context.log.info(f"resuming {lineage}: {len(done)} of {len(keys)} partitions already committed, skipped")
            for key, (rows, run_id) in done.items():
                for asset in assets:
                    _add_partition_metadata(
                        context, asset, key, {"rows": rows.get(asset.to_user_string(), 0), "committed_by_run": run_id}
                    )
        return [k for k in keys if k not in done]

    def _due(
        self, context: dg.OutputContext, spec: TableSpec, members: tuple[str, ...], targets: dict[str, Target]
    ) -> dict[str, tuple[str, ...]]:
        """Per partition, the members not yet held (see ledger.members_held); partitions holding them all are left
        out. A member already held is never refetched by a later run unless its rows were unsettled, or the run
        carries the refetch tag (`backfill-platform backfill --refetch`), which makes every member due again."""
        run = context.step_context.dagster_run
        if run.tags.get(REFETCH_TAG):
            return dict.fromkeys(targets, members)
        lineage = ledger.lineage_of(run)
        held = ledger.members_held(self._dsn(), spec.key, list(targets), lineage)
        due = {k: tuple(m for m in members if m not in held.get(k, set())) for k in targets}
        due = {k: v for k, v in due.items() if v}
        skipped = len(targets) - len(due)
        if skipped or any(len(v) < len(members) for v in due.values()):
            context.log.info(
                f"{spec.qualified}: {skipped} of {len(targets)} partitions hold every member already; "
                f"{sum(len(v) for v in due.values())} partition-members of {len(targets) * len(members)} are due"
            )
        return due

    def _build_indexes(self, specs: list[TableSpec]) -> None:
        """Each deferred index in its own transaction, `writers` at a time (a build uses one core)."""
        statements = [(spec, *index) for spec in specs for index in spec.secondary_indexes]

        def build(job: tuple[TableSpec, tuple[str, ...], IndexMethod]) -> None:
            # Two runs side by side (PARTITIONS_PER_RUN) that both deferred into the empty table both pass IF NOT
            # EXISTS; the second waits for the first's build to commit, then fails on its name: the index is there.
            with (
                psycopg.connect(self._dsn(), autocommit=True) as conn,
                contextlib.suppress(psycopg.errors.UniqueViolation),
            ):
                conn.execute(q.create_index(*job))

        with ThreadPoolExecutor(max_workers=max(1, self.writers), thread_name_prefix="index-build") as pool:
            for future in [pool.submit(build, job) for job in statements]:
                future.result()

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
        summary = {
            "table": next(iter(targets.values())).spec.qualified,
            "written_along": obj.source,
            "rows_written": sum(rows.values()),
            "partitions_written": len(rows),
        }
        _report_run_totals(context, summary)

    def _defer_indexes(self, spec: TableSpec, targets: dict[str, Target]) -> bool:
        if not spec.secondary_indexes or not spec.defer_indexes_from or len(targets) < spec.defer_indexes_from:
            return False
        with psycopg.connect(self._dsn()) as conn:
            return table_is_empty(conn, spec)

    def _write_all(
        self,
        context: dg.OutputContext,
        batches: Any,
        targets: dict[str, Target],
        children: list[tuple[dict[str, Target], Any]],
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
            if batch.members is not None:
                return dataclasses.replace(target, members=batch.members, unsettled=batch.unsettled)
            return target

        def children_of(batch: PartitionBatch) -> list[tuple[Target, Any]]:
            return [(c_targets[batch.partition_key], select) for c_targets, select in children]

        if self.writers <= 1:
            with psycopg.connect(self._dsn()) as conn:
                for batch in batches:
                    yield (
                        batch,
                        write_partition(conn, target_of(batch), batch.rows, batch.columns, children_of(batch)),
                    )
            return
        local = threading.local()
        opened: list[psycopg.Connection] = []

        def write(batch: PartitionBatch) -> tuple[PartitionBatch, WriteStats]:
            if not hasattr(local, "conn"):
                local.conn = psycopg.connect(self._dsn())
                opened.append(local.conn)
            return batch, write_partition(local.conn, target_of(batch), batch.rows, batch.columns, children_of(batch))

        produced = iter(batches)
        try:
            with ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="partition-writer") as pool:
                try:
                    # Dagster's context is not thread-safe: results are reported from this thread as they complete.
                    in_flight: set[Future] = set()
                    for batch in produced:
                        in_flight.add(pool.submit(write, batch))
                        if len(in_flight) >= self.writers:
                            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            yield from (f.result() for f in done)
                    yield from (f.result() for f in as_completed(in_flight))
                except BaseException:
                    # Stop the source before waiting for the other writers: one may be reading rows that a stopped
                    # fetch will never send (a failed partition must not leave the run hanging).
                    close = getattr(produced, "close", None)
                    if close is not None:
                        close()
                    raise
        finally:
            for conn in opened:
                conn.close()

    @staticmethod
    def _report(
        context: dg.OutputContext,
        asset_key: dg.AssetKey,
        partition: str,
        stats: WriteStats,
        source_metadata: Mapping[str, Any],
    ) -> None:
        """Tell Dagster at once (this partition is green even if a later one fails), with this partition's figures.

        The same figures are attached to the partition's own materialization that Dagster records when the step
        succeeds, so a partition's page shows its rows, bytes and API calls, never the whole run's."""
        if partition == ledger.UNPARTITIONED:
            return
        metadata = {
            "rows": stats.rows,
            "bytes": stats.bytes,
            "seconds": round(stats.seconds, 3),
            "rows_per_s": round(stats.rows / stats.seconds) if stats.seconds > 0 else 0,
            **source_metadata,
        }
        context.log_event(dg.AssetMaterialization(asset_key=asset_key, partition=partition, metadata=metadata))
        _add_partition_metadata(context, asset_key, partition, metadata)

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


RUN_TOTALS = "run totals"


def _report_run_totals(context: dg.OutputContext, summary: Mapping[str, Any]) -> None:
    """Once per run and asset: a log line and an observation (a ranged run's output metadata would be copied onto
    every partition's materialization); an unpartitioned output keeps them as its materialization's metadata."""
    context.log.info(f"{RUN_TOTALS} for {context.asset_key.to_user_string()}: {_line(summary)}")
    if context.has_asset_partitions:
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, description=RUN_TOTALS, metadata=summary))
    else:
        context.add_output_metadata(dict(summary))


def _add_partition_metadata(
    context: dg.OutputContext, asset_key: dg.AssetKey, partition: str, metadata: Mapping[str, Any]
) -> None:
    step = context.step_context
    if context.has_asset_partitions and step.assets_def is not None and asset_key in step.assets_def.keys:
        step.add_asset_metadata(metadata, asset_key=asset_key, partition_key=partition)


@dataclass
class RunTotals:
    """What one output wrote in this run, reported once (a log line; output metadata when unpartitioned)."""

    rows: int = 0
    bytes: int = 0
    partitions: int = 0
    started: float = field(default_factory=time.perf_counter)
    index_build_seconds: float | None = None

    def add(self, stats: WriteStats) -> None:
        self.rows += stats.rows
        self.bytes += stats.bytes
        self.partitions += 1

    def metadata(self) -> dict[str, Any]:
        seconds = time.perf_counter() - self.started
        out: dict[str, Any] = {
            "rows_written": self.rows,
            "bytes_written": self.bytes,
            "partitions_written": self.partitions,
            "seconds": round(seconds, 3),
            "rows_per_s": round(self.rows / max(seconds, 1e-9)),
        }
        if self.index_build_seconds is not None:
            out["index_build_seconds"] = self.index_build_seconds
        return out


def _line(summary: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in summary.items())
