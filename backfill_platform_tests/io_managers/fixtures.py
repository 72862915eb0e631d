"""Test tables and assets for the IO manager (a Canton-like shape: text key, timestamptz, numeric, jsonb)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster import AssetExecutionContext

from backfill_platform.io_managers.spec import Batches, Column, PartitionBatch, TableSpec, register

DAILY = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-04-01")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

EVENTS = TableSpec(
    schema="iotest",
    name="events",
    columns=(
        Column("id", "text"),
        Column("ts", "timestamptz"),
        Column("amount", "numeric"),
        Column("note", "text"),
        Column("payload", "jsonb"),
    ),
    primary_key=("id",),
    partition_column="ts",
    write_mode="replace",
)
ACCOUNTS = TableSpec(
    schema="iotest",
    name="accounts",
    columns=(Column("id", "text"), Column("name", "text"), Column("balance", "bigint")),
    primary_key=("id",),
    write_mode="merge",
)
register(EVENTS, ACCOUNTS)


def ranged_events(fn):
    """`fn` as asset iotest/events: daily, written by the IO manager, a whole range in one run."""
    return dg.asset(
        key=["iotest", "events"],
        partitions_def=DAILY,
        io_manager_key="io_manager",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )(fn)


def day_rows(key: str, n: int = 5, version: str = "a") -> list[tuple]:
    day = datetime.fromisoformat(key).replace(tzinfo=UTC)
    return [
        (f"{key}-{i}", day + timedelta(hours=i), f"{i}.5", f"{version} note {i}", {"i": i, "v": version})
        for i in range(n)
    ]


def range_tags(start: str, end: str) -> dict[str, str]:
    return {RANGE_START: start, RANGE_END: end}


def events_asset(version: str = "a", n: int = 5, fetched: list[str] | None = None):
    @ranged_events
    def events(context: AssetExecutionContext) -> Batches:
        def batches(keys):
            for key in keys:
                if fetched is not None:
                    fetched.append(key)
                yield PartitionBatch(key, day_rows(key, n, version), metadata={"api_calls": 1})

        return Batches(batches)

    return events


def resumable_events_asset(fetch_log: str, stall_after: int | None = None):
    """Fetches the partitions the IO manager says are pending; logs each fetch; optionally stalls to be killed."""
    from pathlib import Path

    @ranged_events
    def events(context: AssetExecutionContext) -> Batches:
        def batches(pending):
            import time

            for n, key in enumerate(pending):
                if stall_after is not None and n == stall_after:
                    time.sleep(600)  # the test kills the process here, mid-range
                with Path(fetch_log).open("a") as log:
                    log.write(f"{context.run_id} {key}\n")
                yield PartitionBatch(key, day_rows(key))

        return Batches(batches)

    return events
