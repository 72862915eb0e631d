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
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def is not None else None,
        pool=source,
        required_resource_keys={source},
    )
    def _tables(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
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


def _output(table: TableSpec) -> str:
    return table.key.to_python_identifier()
