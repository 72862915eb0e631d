"""One shape for every fetching asset: a table fetched from an API plus its child tables derived in SQL.

They are one multi-asset (can_subset), so a partition's parent rows and its children commit in one transaction, and
selecting children alone recomputes them from the stored parent rows with zero API calls.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg

from backfill_platform.io_managers.spec import Batches, SqlInsert, TableSpec, WrittenAlong

Fetch = Callable[[dg.AssetExecutionContext, Any], Batches]


def fetched_tables(
    *,
    source: str,
    parent: TableSpec,
    children: Sequence[TableSpec] = (),
    partitions_def: dg.PartitionsDefinition | None,
    fetch: Fetch,
) -> dg.AssetsDefinition:
    """`fetch(context, api)` returns the parent's batches; the resource keyed `source` is its `api`."""
    for child in children:
        if child.derived_from is None or child.derived_from.parent != parent:
            raise ValueError(
                f"source {source}: table {child.qualified} is not declared as a child of {parent.qualified}"
            )

    def spec(table: TableSpec, **kw: Any) -> dg.AssetSpec:
        return dg.AssetSpec(
            table.key, description=table.description, partitions_def=partitions_def, group_name=source, **kw
        ).with_io_manager_key("io_manager")

    @dg.multi_asset(
        name=f"{parent.schema}_{parent.name}",
        specs=[
            spec(parent, kinds={"postgres", "api"}),
            *(spec(c, kinds={"postgres"}, deps=[parent.key]) for c in children),
        ],
        can_subset=True,
        backfill_policy=backfill_policy(None) if partitions_def is not None else None,
        pool=source,
        required_resource_keys={source},
    )
    def _tables(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
        if partitions_def is not None:
            require_partitions(context, partitions_def)
        selected = context.selected_asset_keys
        wanted = [c for c in children if c.key in selected]
        if parent.key not in selected:  # children alone: recomputed from the stored parent rows, no API calls
            for child in wanted:
                yield dg.Output(SqlInsert(child.derive_select(parent.ident)), output_name=_output(child))
            return
        batches = fetch(context, getattr(context.resources, source))
        yield dg.Output(batches.with_children(wanted), output_name=_output(parent))
        for child in wanted:
            yield dg.Output(WrittenAlong(parent.qualified), output_name=_output(child))

    return _tables


def backfill_policy(partitions_per_run: int | None) -> dg.BackfillPolicy:
    """One run for a whole range (the ledger resumes it day by day), or runs of N partitions that the run queue
    spreads over run workers side by side, up to the API's limit in dagster.yaml, on the one shared rate budget."""
    return (
        dg.BackfillPolicy.single_run()
        if partitions_per_run is None
        else dg.BackfillPolicy.multi_run(partitions_per_run)
    )


def with_partitions_per_run(
    assets: Sequence[dg.AssetsDefinition], partitions_per_run: int | None
) -> tuple[dg.AssetsDefinition, ...]:
    """The source's partitioned assets with its PARTITIONS_PER_RUN policy (applied at load, for every source)."""
    if partitions_per_run is None:
        return tuple(assets)
    policy = backfill_policy(partitions_per_run)
    return tuple(a.with_attributes(backfill_policy=policy) if a.backfill_policy is not None else a for a in assets)


def require_partitions(context: dg.AssetExecutionContext, partitions_def: dg.PartitionsDefinition) -> None:
    """Fail in one line when the run's partition range holds no partition. Dagster accepts an inverted range
    (`--partition-range 2024-03-05...2024-03-01` checks only that both ends are keys) and runs the step with no
    partition keys: the run would succeed with nothing fetched and nothing written."""
    if not context.has_partition_key_range or context.partition_keys:
        return
    span = context.partition_key_range
    if _inverted(partitions_def, span):
        reason = "the start is after the end; swap them"
    else:
        reason = "check that both ends are partition keys of this asset"
    raise dg.Failure(
        description=f"partition range {span.start}...{span.end} holds no partitions: {reason}", allow_retries=False
    )


def _inverted(partitions_def: dg.PartitionsDefinition, span: dg.PartitionKeyRange) -> bool:
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        start_of = partitions_def.start_time_for_partition_key
        try:
            return start_of(span.start) > start_of(span.end)
        except ValueError:  # an end that is not a key of this definition
            return False
    keys = partitions_def.get_partition_keys()
    return span.start in keys and span.end in keys and keys.index(span.start) > keys.index(span.end)


def _output(table: TableSpec) -> str:
    return table.key.to_python_identifier()
