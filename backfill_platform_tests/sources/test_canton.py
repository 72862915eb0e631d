"""Canton / Scan against the sandbox: overlapping migrations, event trees, kill and resume, faults."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import CantonApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as truth
from backfill_platform.sources import load, named
from backfill_platform.sources.canton.tables import EVENTS
from backfill_platform_tests.sources.helpers import drop_schemas, kill_after_commits

CFG = SandboxConfig()
FIRST = datetime(2024, 12, 9, tzinfo=UTC)  # migration 0 ends 2024-12-10 12:00, migration 1 starts 2024-12-10 00:00
RANGE = {"dagster/asset_partition_range_start": "2024-12-09", "dagster/asset_partition_range_end": "2024-12-11"}
ALL = list(named("canton", load()).assets)
CHECKS = named("canton", load()).checks


def resources(origin: str, db_url: str, **kw) -> dict:
    canton = CantonApi(base_url=f"{origin}/canton", rate="200/s", backoff_initial_s=0.05, backoff_max_s=0.3, **kw)
    return {"canton": canton, "io_manager": PostgresIOManager(database_url=db_url)}


def ground_truth(first: datetime = FIRST, days: int = 3) -> list[dict]:
    return truth.updates_in_window(CFG.seed, CFG.scale, first, first + timedelta(days=days))


def expected_events(updates: list[dict]) -> int:
    return sum(len(u["events_by_id"]) if "events_by_id" in u else 1 for u in updates)


@pytest.fixture
def clean(db_url: str) -> str:
    return drop_schemas(db_url, "canton")


def nothing_written(db_url: str) -> bool:
    """No row and no ledger entry (tables are created in a short transaction of their own, before the day's)."""
    with psycopg.connect(db_url) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0]
            else 0
            for t in ("canton.updates", "canton.events", "backfill_platform.ledger")
        ]
    return counts == [0, 0, 0]


def stored_ids(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT update_id FROM canton.updates ORDER BY migration_id, record_time")]


def test_three_days_over_two_overlapping_migrations_land_the_ground_truth(sandbox, clean) -> None:
    result = dg.materialize([*ALL, *CHECKS], resources=resources(sandbox.origin, clean), tags=RANGE)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    updates = ground_truth()
    assert {truth_migration for truth_migration in (u.get("migration_id", 1) for u in updates)} >= {0, 1}
    assert stored_ids(clean) == [u["update_id"] for u in updates]
    with psycopg.connect(clean) as conn:
        (events,) = conn.execute("SELECT count(*) FROM canton.events").fetchone()
        per_migration = dict(conn.execute("SELECT migration_id, count(*) FROM canton.updates GROUP BY 1").fetchall())
        tree = conn.execute(
            "SELECT e.event_id, e.child_event_ids, array_agg(c.event_id ORDER BY c.event_id) "
            "FROM canton.events e JOIN canton.events c ON c.parent_event_id = e.event_id "
            "WHERE e.event_type = 'exercised_event' GROUP BY 1, 2 LIMIT 20"
        ).fetchall()
        roots_without_parent = conn.execute(
            "SELECT count(*) FROM canton.events WHERE event_id LIKE '%:0' AND parent_event_id IS NOT NULL"
        ).fetchone()[0]
    assert events == expected_events(updates)
    assert per_migration[0] > 0 and per_migration[1] > 0
    assert tree and all(sorted(children) == sorted(agg) for _, children, agg in tree)
    assert roots_without_parent == 0


@pytest.mark.slow
def test_killed_mid_range_then_retried_loses_and_doubles_nothing(sandbox, clean) -> None:
    sandbox.faults("canton", {"probability": {"slow": 1.0}, "slow_seconds": 1.0})  # every call takes a second
    tags = {**RANGE, "dagster/backfill": "canton-kill"}
    script = f"""
        import dagster as dg
        from backfill_platform_tests.sources.test_canton import ALL, resources
        dg.materialize(ALL, resources=resources({sandbox.origin!r}, {clean!r}), tags={tags!r})
    """
    kill_after_commits(script, clean, "canton/updates", 2, env={"BACKFILL_CANTON_STREAMS": "1"})
    with psycopg.connect(clean) as conn:
        days = conn.execute("SELECT count(DISTINCT record_time::date) FROM canton.updates").fetchone()[0]
        (events,) = conn.execute("SELECT count(*) FROM canton.events").fetchone()
    assert days == 2  # two whole days, nothing of the third
    assert events == expected_events(ground_truth(FIRST, 2))  # committed with their updates, day by day
    sandbox.reset()
    result = dg.materialize(ALL, resources=resources(sandbox.origin, clean), tags=tags)
    assert result.success
    assert stored_ids(clean) == [u["update_id"] for u in ground_truth()]
    third = ground_truth(FIRST + timedelta(days=2), 1)
    # Only the third day was fetched again: one stream (migration 1 alone covers 2024-12-11), full pages + the last.
    assert sandbox.stats()["routes"]["canton v2/updates"]["requests"] == len(third) // 1000 + 1


def test_injected_429_503_and_truncated_pages_are_survived(sandbox, clean) -> None:
    sandbox.faults(
        "canton",
        {
            "scripted": [{"kind": "status", "status": 503, "times": 3}, {"kind": "truncated"}, {"kind": "drop"}],
            "probability": {"429": 0.2},
        },
    )
    assert dg.materialize(ALL, resources=resources(sandbox.origin, clean), tags=RANGE).success
    assert stored_ids(clean) == [u["update_id"] for u in ground_truth()]
    stats = sandbox.stats()["apis"]["canton"]
    # the scripted faults exactly; the 429s are drawn by chance
    assert stats.get("503") == 3 and stats.get("fault_truncated") == 1 and stats.get("fault_drop") == 1
    assert stats.get("429", 0) > 0


def test_malformed_page_fails_clearly_and_writes_nothing(sandbox, clean) -> None:
    sandbox.faults(
        "canton", {"scripted": [{"kind": "status", "status": 200, "body": '{"updates": []}', "route": "/v2/updates"}]}
    )
    with pytest.raises(Exception, match=r"canton /api/scan/v2/updates: malformed page"):
        dg.materialize(ALL, resources=resources(sandbox.origin, clean), partition_key="2024-12-09")
    assert nothing_written(clean)


def test_events_alone_are_rederived_from_stored_updates_without_api_calls(sandbox, clean) -> None:
    assert dg.materialize(ALL, resources=resources(sandbox.origin, clean), tags=RANGE).success
    with psycopg.connect(clean, autocommit=True) as conn:
        conn.execute("UPDATE canton.events SET template_id = 'stale', parent_event_id = NULL")
    sandbox.reset()
    result = dg.materialize(ALL, selection=[EVENTS.key], resources=resources(sandbox.origin, clean), tags=RANGE)
    assert result.success
    with psycopg.connect(clean) as conn:
        stale, total = conn.execute(
            "SELECT count(*) FILTER (WHERE template_id = 'stale'), count(*) FROM canton.events"
        ).fetchone()
        linked = conn.execute("SELECT count(*) FROM canton.events WHERE parent_event_id IS NOT NULL").fetchone()[0]
    assert stale == 0 and total == expected_events(ground_truth()) and linked > 0
    assert "canton v2/updates" not in sandbox.stats()["routes"]


def test_a_day_commits_its_updates_and_events_together(sandbox, clean) -> None:
    """An update whose events cannot be derived fails its day in one line; none of that day's updates stay."""
    bad = {
        "update_id": "1220bad",
        "migration_id": 0,
        "workflow_id": "",
        "record_time": "2024-12-09T01:00:00.000000Z",
        "synchronizer_id": "global-domain::1220",
        "effective_at": "2024-12-09T01:00:00.000000Z",
        "root_event_ids": ["1220bad:0"],
        "events_by_id": {"1220bad:0": {"event_type": "exercised_event", "event_id": "1220bad:0", "consuming": "maybe"}},
    }
    body = json.dumps({"transactions": [bad]})
    sandbox.faults("canton", {"scripted": [{"kind": "status", "status": 200, "body": body, "route": "/v2/updates"}]})
    with pytest.raises(Exception, match=r"asset canton/events partition 2024-12-09: .*boolean"):
        dg.materialize(ALL, resources=resources(sandbox.origin, clean), partition_key="2024-12-09")
    assert nothing_written(clean)
