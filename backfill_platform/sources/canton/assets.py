"""Scan assets: raw updates fetched by several day streams at once, and their events derived in SQL."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import dagster as dg

from backfill_platform.io_managers.spec import Batches, PartitionBatch
from backfill_platform.resources.apis import CantonApi
from backfill_platform.resources.prefetch import Prefetch
from backfill_platform.sources.canton import settings
from backfill_platform.sources.canton.client import CantonClient, Migration, ScanUpdate
from backfill_platform.sources.canton.tables import EVENTS, UPDATES
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.fetching import fetched_tables


class UpdateRow(NamedTuple):
    """One row of canton.updates (field names are its columns); the item's JSON goes to `payload` as sent."""

    update_id: str
    migration_id: int
    record_time: str
    synchronizer_id: str | None
    effective_at: str | None
    workflow_id: str | None
    kind: str
    payload: str


def update_row(update: ScanUpdate) -> UpdateRow:
    head, event = update.head, update.head.event
    return UpdateRow(
        update_id=head.update_id,
        migration_id=head.migration,
        record_time=head.record_time,
        synchronizer_id=head.synchronizer_id if event is None else event.target_synchronizer,
        effective_at=head.effective_at,
        workflow_id=head.workflow_id,
        kind="transaction" if event is None else "reassignment",
        payload=update.raw.decode(),
    )


def day_pages(
    client: CantonClient, migrations: list[Migration], key: str, metadata: dict[str, Any]
) -> Iterator[list[UpdateRow]]:
    """Every update of one UTC day as rows, page by page, over each migration whose record times overlap it.

    Runs on one fetch thread, so the calls it makes are this day's own: they go into `metadata` at the end."""
    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    with client.session.track() as calls:
        for m in client.streams(migrations, start, end):
            for page in client.day(m, start, end):
                yield [update_row(u) for u in page]
    metadata.update(api_calls=calls.calls, api_http_429=calls.http_429, api_retries=calls.retries)


def fetch_updates(context: dg.AssetExecutionContext, canton: CantonApi, streams: int) -> Batches:
    """The pending days as lazy batches, fetched up to `streams` days ahead of the writers.

    Each day streams its pages into a bounded queue (Prefetch) that its writer's COPY drains as pages arrive, so
    memory holds at most PAGES_AHEAD pages per day however long the range."""
    session = canton.session()
    client = CantonClient(session, migrations=canton.migrations)
    run_start = session.metrics.snapshot()

    def produce(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        if not keys:
            return
        migrations = client.migrations()
        pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="scan-day")
        started: list[Prefetch] = []
        ahead: deque[tuple[str, Prefetch]] = deque()
        todo = iter(keys)

        def start_next() -> None:
            key = next(todo, None)
            if key is not None:
                metadata: dict[str, Any] = {}
                stream = Prefetch(
                    pool, lambda: day_pages(client, migrations, key, metadata), settings.PAGES_AHEAD, metadata
                )
                started.append(stream)
                ahead.append((key, stream))

        try:
            for _ in range(streams):
                start_next()
            while ahead:
                key, stream = ahead.popleft()
                yield PartitionBatch(key, stream.rows(), metadata=stream.metadata, columns=UpdateRow._fields)
                start_next()
        except BaseException:  # a failed run: stop every producer, even those whose writer never started
            for stream in started:
                stream.close()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=False)  # the last days' writers are still draining their queues

    return Batches(produce, summary=lambda: {f"api_{k}": v for k, v in session.metrics.since(run_start).items()})


def build(config: SourceConfig, partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    streams: int = config["STREAMS"]
    return [
        fetched_tables(
            source="canton",
            parent=UPDATES,
            children=[EVENTS],
            partitions_def=partitions,
            fetch=lambda context, canton: fetch_updates(context, canton, streams),
        )
    ]
