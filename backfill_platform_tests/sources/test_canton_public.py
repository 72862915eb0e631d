"""Canton against a Scan serving only the public /v2/updates: migrations found from the cursor itself."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as truth
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform.sources import load, named
from backfill_platform_tests.sources.helpers import drop_schemas
from backfill_platform_tests.sources.test_canton import resources, stored_ids

FIRST = datetime(2024, 12, 9, tzinfo=UTC)  # migration 0 ends 2024-12-10 12:00, migration 1 starts 2024-12-10 00:00
DAYS = 5
RANGE = {"dagster/asset_partition_range_start": "2024-12-09", "dagster/asset_partition_range_end": "2024-12-13"}
# One day at a time, so what the stream of 2024-12-11 learns (migration 0 has ended) spares the later days.
ASSETS = list(named("canton", load({"BACKFILL_CANTON_STREAMS": "1"})).assets)


@pytest.fixture(scope="module")
def public_scan() -> Iterator[SandboxProcess]:
    with SandboxProcess(SandboxConfig(canton_backfilling=False)) as server:
        yield server


def pages_of_day_streams() -> int:
    """The floor with every migration's range known: per (day, migration) with updates, full pages + the last."""
    total = 0
    for d in range(DAYS):
        start = FIRST + timedelta(days=d)
        for m in truth.MIGRATIONS:
            day = truth.day_updates(SandboxConfig().seed, m.migration_id, start.date(), SandboxConfig().scale)
            total += len(day.items) // 1000 + 1 if day.items else 0
    return total


def test_ranged_run_without_migration_info_finds_every_stream_and_lands_the_ground_truth(public_scan, db_url) -> None:
    clean = drop_schemas(db_url, "canton")
    assert public_scan.config.canton_backfilling is False
    result = dg.materialize(ASSETS, resources=resources(public_scan.origin, clean), tags=RANGE)
    assert result.success
    updates = truth.updates_in_window(SandboxConfig().seed, SandboxConfig().scale, FIRST, FIRST + timedelta(days=DAYS))
    assert {u.get("migration_id", u.get("event", {}).get("migration_id")) for u in updates} == {0, 1}
    assert stored_ids(clean) == [u["update_id"] for u in updates]
    routes = public_scan.stats()["routes"]
    assert not any("backfilling" in r for r in routes)  # unrouted: the sandbox's 404 is not an API answer
    # Discovery: 1-item pages for migrations 0, 1, 2 and the empty answer after 2; one probe of migration 0 on
    # 2024-12-11 (its first update is migration 1's: ended); the day streams as if the ranges were known.
    assert routes["canton v2/updates"]["requests"] == 4 + 1 + pages_of_day_streams()
