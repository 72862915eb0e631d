"""Scan assets: raw updates fetched by several day streams at once, and their events derived in SQL."""

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster import AssetExecutionContext
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers.ledger import pending_partitions
from backfill_platform.io_managers.spec import Batches, Derived, PartitionBatch, SqlInsert, WrittenAlong
from backfill_platform.io_managers.sql import STAGING
from backfill_platform.resources.apis import CantonApi
from backfill_platform.resources.prefetch import Prefetch
from backfill_platform.sources.canton import settings
from backfill_platform.sources.canton.client import CantonClient, Migration, ScanUpdate
from backfill_platform.sources.canton.partitions import daily
from backfill_platform.sources.canton.tables import EVENTS, UPDATES


def update_row(update: ScanUpdate) -> tuple:
    """One row per update, in UPDATES column order; the item's JSON goes to `payload` as sent."""
    head, event = update.head, update.head.event
    kind = "transaction" if event is None else "reassignment"
    synchronizer = head.synchronizer_id if event is None else event.target_synchronizer
    return (
        head.update_id,
        head.migration,
        head.record_time,
        synchronizer,
        head.effective_at,
        head.workflow_id,
        kind,
        update.raw.decode(),
    )


def day_pages(client: CantonClient, migrations: list[Migration], key: str) -> Iterator[list[tuple]]:
    """Every update of one UTC day as rows, page by page, over each migration whose record times overlap it."""
    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    for m in migrations:
        if m.overlaps(start, end):
            for page in client.day(m.migration_id, start, end):
                yield [update_row(u) for u in page]


EVENTS_SELECT = sql.SQL("""
WITH ev AS (
    SELECT u.update_id, u.record_time, u.migration_id, e.key AS event_id, e.value AS body
    FROM {updates} u CROSS JOIN LATERAL jsonb_each(u.payload->'events_by_id') e
    WHERE u.record_time >= %(start)s AND u.record_time < %(end)s AND u.kind = 'transaction'
    UNION ALL
    SELECT u.update_id, u.record_time, u.migration_id, u.payload#>>'{{event,created_event,event_id}}',
           u.payload#>'{{event,created_event}}'
    FROM {updates} u
    WHERE u.record_time >= %(start)s AND u.record_time < %(end)s AND u.kind = 'reassignment'
      AND u.payload#>'{{event,created_event}}' IS NOT NULL
),
parents AS (
    SELECT c.child_id, ev.event_id AS parent_id
    FROM ev CROSS JOIN LATERAL jsonb_array_elements_text(ev.body->'child_event_ids') AS c(child_id)
)
SELECT ev.event_id, ev.update_id, ev.record_time, ev.migration_id, ev.body->>'event_type', ev.body->>'template_id',
       ev.body->>'contract_id', ev.body->>'choice', (ev.body->>'consuming')::boolean, p.parent_id,
       CASE WHEN ev.body ? 'child_event_ids'
            THEN ARRAY(SELECT jsonb_array_elements_text(ev.body->'child_event_ids')) END,
       coalesce(ev.body->'create_arguments', ev.body->'choice_argument')
FROM ev LEFT JOIN parents p ON p.child_id = ev.event_id
""")


def events_select(updates: sql.Composable) -> sql.Composed:
    """Events of the updates in `updates` (the target table, or a partition's staged rows) within the window."""
    return EVENTS_SELECT.format(updates=updates)


UPDATES_KEY = dg.AssetKey(list(UPDATES.asset_key))
EVENTS_KEY = dg.AssetKey(list(EVENTS.asset_key))


@dg.multi_asset(
    name="scan",
    specs=[
        dg.AssetSpec(
            UPDATES_KEY,
            description="Splice Scan ledger updates (transactions and reassignments), one row per update, by UTC "
            "record day.",
            partitions_def=daily,
            group_name="canton",
            kinds={"postgres", "api"},
        ).with_io_manager_key("io_manager"),
        dg.AssetSpec(
            EVENTS_KEY,
            deps=[UPDATES_KEY],
            description="Ledger events of each update's tree (created and exercised), derived in PostgreSQL from "
            "the update payloads: template, contract, choice, consuming flag, parent and children, arguments.",
            partitions_def=daily,
            group_name="canton",
            kinds={"postgres"},
        ).with_io_manager_key("io_manager"),
    ],
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="canton",
)
def scan(context: AssetExecutionContext, canton: CantonApi) -> Iterator[dg.Output]:
    """Updates fetched by several day streams at once, each day committed with its events in one transaction.

    Paging follows /v2/updates: ascending (migration_id, record_time), the exclusive `after` cursor from the last item.
    Several days stream at once (BACKFILL_CANTON_STREAMS), each holding at most PAGES_AHEAD pages. Events are derived
    in SQL from the day's staged update rows, before those are compressed into the table, so a day's updates and
    events commit together. Days the run's lineage committed are not fetched again. Selecting events alone re-derives
    them from stored updates, without API calls (a parsing fix is replayed).
    """
    selected = context.selected_asset_keys
    if UPDATES_KEY not in selected:
        yield dg.Output(SqlInsert(events_select(UPDATES.ident)), output_name=EVENTS_KEY.to_python_identifier())
        return
    derived = (Derived(EVENTS.asset_key, events_select(STAGING)),) if EVENTS_KEY in selected else ()
    yield dg.Output(fetch_updates(context, canton, derived), output_name=UPDATES_KEY.to_python_identifier())
    if derived:
        yield dg.Output(WrittenAlong(UPDATES.qualified), output_name=EVENTS_KEY.to_python_identifier())


def fetch_updates(context: AssetExecutionContext, canton: CantonApi, derived: tuple[Derived, ...]) -> Batches:
    """The run's pending days as lazy batches, fetched up to BACKFILL_CANTON_STREAMS days ahead of the writer."""
    session = canton.session()
    client = CantonClient(session)
    keys = pending_partitions(context, database_url(), UPDATES_KEY)
    migrations = client.migrations() if keys else []
    run_start = session.metrics.snapshot()

    def batches() -> Iterator[PartitionBatch]:
        # Up to STREAMS days fetch at once, each into a bounded queue that its writer's COPY drains as pages arrive.
        pool = ThreadPoolExecutor(max_workers=max(1, settings.STREAMS), thread_name_prefix="scan-day")
        started: list[Prefetch] = []
        ahead: deque[tuple[str, Prefetch]] = deque()
        todo = iter(keys)

        def start_next() -> None:
            key = next(todo, None)
            if key is not None:
                stream = Prefetch(pool, lambda: day_pages(client, migrations, key), settings.PAGES_AHEAD)
                started.append(stream)
                ahead.append((key, stream))

        try:
            for _ in range(max(1, settings.STREAMS)):
                start_next()
            while ahead:
                key, stream = ahead.popleft()
                yield PartitionBatch(key, stream.rows(), metadata=stream.metadata)
                start_next()
        except BaseException:  # a failed run: stop every producer, even those whose writer never started
            for stream in started:
                stream.close()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=False)  # the last days' writers are still draining their queues

    return Batches(
        batches(),
        summary=lambda: {f"api_{k}": v for k, v in session.metrics.since(run_start).items()},
        derived=derived,
    )
