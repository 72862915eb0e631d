"""Scan simulator: /v2/updates cursor paging over overlapping migrations, backfilling endpoints, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as data
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform_tests.sandbox.helpers import CONFIG, SCAN_UPDATES, post
from backfill_platform_tests.sandbox.spec import response_schema, validate

SPEC = "splice-scan/scan.yaml"


def test_updates_page_matches_the_spec(sandbox) -> None:
    r = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 50, "daml_value_encoding": "compact_json"})
    assert r.status_code == 200
    body = r.json()
    validate(response_schema(SPEC, "/v2/updates", "post"), body)
    assert len(body["transactions"]) == 50
    first = body["transactions"][0]
    assert first["migration_id"] == 0 and first["record_time"].startswith("2024-06-24")


def _migration(item: dict) -> int:
    return item["migration_id"] if "migration_id" in item else item["event"]["migration_id"]


def test_cursor_walk_over_overlapping_migrations_is_the_ground_truth(sandbox) -> None:
    """Paging by (migration_id, record_time) visits every update of both migrations once, in stream order."""
    start, end = datetime(2024, 12, 9, 18, tzinfo=UTC), datetime(2024, 12, 10, 14, tzinfo=UTC)
    truth = data.updates_in_window(CONFIG.seed, CONFIG.scale, start, end)
    m0 = [u for u in truth if _migration(u) == 0]
    m1 = [u for u in truth if _migration(u) == 1]
    assert m0 and m1 and m1[0]["record_time"] < m0[-1]["record_time"]  # the two migrations overlap in time
    seen: list[str] = []
    after = {
        "after_migration_id": 0,
        "after_record_time": data.iso_z(start).replace("18:00:00.000000", "17:59:59.999999"),
    }
    while True:
        page = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 200, "after": after}).json()["transactions"]
        seen.extend(i["update_id"] for i in page if i["record_time"] < data.iso_z(end))
        last = page[-1]
        if _migration(last) >= 1 and last["record_time"] >= data.iso_z(end):
            break
        after = {"after_migration_id": _migration(last), "after_record_time": last["record_time"]}
    assert seen == [u["update_id"] for u in truth]


def test_page_size_errors_are_the_servers(sandbox) -> None:
    big = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 1001})
    assert big.status_code == 400 and big.json() == {"error": "Exceeded limit maximum (1001 > 1000)."}
    zero = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 0})
    assert zero.status_code == 400 and zero.json() == {"error": "Limit must be at least 1."}


def test_head_returns_fewer_than_page_size(sandbox) -> None:
    # An hour before now, whatever the time of day: since midnight, a late-evening run would see a full page.
    since = datetime.now(UTC) - timedelta(hours=1)
    after = {"after_migration_id": 2, "after_record_time": data.iso_z(since)}
    page = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 1000, "after": after}).json()["transactions"]
    assert 0 < len(page) < 1000
    assert all(item["record_time"] <= data.iso_z(datetime.now(UTC)) for item in page)


def test_backfilling_endpoints(sandbox) -> None:
    info = post(sandbox.origin, "/canton/api/scan/v0/backfilling/migration-info", json={"migration_id": 1}).json()
    validate(response_schema(SPEC, "/v0/backfilling/migration-info", "post"), info)
    assert info["previous_migration_id"] == 0 and info["complete"] is True
    assert (
        post(sandbox.origin, "/canton/api/scan/v0/backfilling/migration-info", json={"migration_id": 9}).status_code
        == 404
    )
    body = post(
        sandbox.origin,
        "/canton/api/scan/v0/backfilling/updates-before",
        json={"migration_id": 0, "synchronizer_id": data.SYNCHRONIZER, "before": "2024-07-01T00:00:00Z", "count": 100},
    ).json()
    validate(response_schema(SPEC, "/v0/backfilling/updates-before", "post"), body)
    times = [t["record_time"] for t in body["transactions"]]
    assert len(times) == 100 and times == sorted(times, reverse=True) and times[0] < "2024-07-01T00:00:00"


def test_not_yet_loaded_503_during_startup() -> None:
    with SandboxProcess(SandboxConfig(canton_startup_503_s=30)) as server:
        r = post(server.origin, SCAN_UPDATES, json={"page_size": 10})
    assert r.status_code == 503 and "not yet loaded its updates history" in r.json()["error"]
