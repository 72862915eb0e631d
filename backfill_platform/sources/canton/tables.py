"""Scan tables: raw updates (one row per update, the item in `payload`) and events derived from their trees."""

from backfill_platform.io_managers.spec import Column, TableSpec, register

UPDATES = TableSpec(
    schema="canton",
    name="updates",
    columns=(
        Column("update_id", "text"),
        Column("migration_id", "bigint", nullable=False),
        Column("record_time", "timestamptz"),
        Column("synchronizer_id", "text"),
        Column("effective_at", "timestamptz"),
        Column("workflow_id", "text"),
        Column("kind", "text"),  # transaction | reassignment
        Column("payload", "jsonb"),
    ),
    primary_key=("update_id",),
    partition_column="record_time",
    write_mode="replace",
    indexes=(("migration_id", "record_time"),),
    defer_indexes_from=7,
)

EVENTS = TableSpec(
    schema="canton",
    name="events",
    columns=(
        Column("event_id", "text"),
        Column("update_id", "text"),
        Column("record_time", "timestamptz"),
        Column("migration_id", "bigint"),
        Column("event_type", "text"),
        Column("template_id", "text"),
        Column("contract_id", "text"),
        Column("choice", "text"),
        Column("consuming", "boolean"),
        Column("parent_event_id", "text"),
        Column("child_event_ids", "text[]"),
        Column("arguments", "jsonb"),
    ),
    primary_key=("event_id",),
    partition_column="record_time",
    write_mode="replace",
    indexes=(("update_id",), ("template_id",), ("contract_id",)),
    defer_indexes_from=7,  # measured: 10 days at scale 10 run at 43–49k rows/s deferred vs 36–39k maintained
)

register(UPDATES, EVENTS)
