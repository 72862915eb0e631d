"""Scan tables: raw updates (one row per update, the item in `payload`) and events derived from their trees."""

from backfill_platform.io_managers.spec import Column, Derivation, TableSpec, register

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
    description="Splice Scan ledger updates (transactions and reassignments), one row per update, by UTC record "
    "day. Several day streams fetch at once over /v2/updates (ascending (migration_id, record_time), the exclusive "
    "`after` cursor), each day committed with its events in one transaction; days the run's lineage committed are "
    "not fetched again.",
)

# The events of each update's tree: every entry of `events_by_id`, and the created event of a reassignment. A
# child's parent is the exercised event whose `child_event_ids` names it.
EVENTS_WITH = """
ev AS (
    SELECT u.update_id, u.record_time, u.migration_id, e.key AS event_id, e.value AS body
    FROM {parent} u CROSS JOIN LATERAL jsonb_each(u.payload->'events_by_id') e
    WHERE u.record_time >= %(start)s AND u.record_time < %(end)s AND u.kind = 'transaction'
    UNION ALL
    SELECT u.update_id, u.record_time, u.migration_id, u.payload#>>'{{event,created_event,event_id}}',
           u.payload#>'{{event,created_event}}'
    FROM {parent} u
    WHERE u.record_time >= %(start)s AND u.record_time < %(end)s AND u.kind = 'reassignment'
      AND u.payload#>'{{event,created_event}}' IS NOT NULL
),
parents AS (
    SELECT c.child_id, ev.event_id AS parent_id
    FROM ev CROSS JOIN LATERAL jsonb_array_elements_text(ev.body->'child_event_ids') AS c(child_id)
)"""

EVENTS = TableSpec(
    schema="canton",
    name="events",
    columns=(
        Column("event_id", "text", expr="ev.event_id"),
        Column("update_id", "text", expr="ev.update_id"),
        Column("record_time", "timestamptz", expr="ev.record_time"),
        Column("migration_id", "bigint", expr="ev.migration_id"),
        Column("event_type", "text", expr="ev.body->>'event_type'"),
        Column("template_id", "text", expr="ev.body->>'template_id'"),
        Column("contract_id", "text", expr="ev.body->>'contract_id'"),
        Column("choice", "text", expr="ev.body->>'choice'"),
        Column("consuming", "boolean", expr="(ev.body->>'consuming')::boolean"),
        Column("parent_event_id", "text", expr="p.parent_id"),
        Column(
            "child_event_ids",
            "text[]",
            expr="CASE WHEN ev.body ? 'child_event_ids' "
            "THEN ARRAY(SELECT jsonb_array_elements_text(ev.body->'child_event_ids')) END",
        ),
        Column("arguments", "jsonb", expr="coalesce(ev.body->'create_arguments', ev.body->'choice_argument')"),
    ),
    primary_key=("event_id",),
    partition_column="record_time",
    write_mode="replace",
    indexes=(("update_id",), ("template_id",)),
    # Contract ids are random hashes looked up by equality: a hash index is a third of the B-tree's size and cheaper
    # to keep up as the table grows (docs/canton-scale.md, "Random keys"). The update_id B-tree stays: an update's
    # events are inserted together, so they share a leaf.
    hash_indexes=("contract_id",),
    defer_indexes_from=7,  # measured: 10 days at scale 10 run at 43–49k rows/s deferred vs 36–39k maintained
    description="Ledger events of each update's tree (created and exercised), derived in PostgreSQL from the update "
    "payloads: template, contract, choice, consuming flag, parent and children, arguments.",
    derived_from=Derivation(UPDATES, "FROM ev LEFT JOIN parents p ON p.child_id = ev.event_id", with_=EVENTS_WITH),
)

register(UPDATES, EVENTS)
