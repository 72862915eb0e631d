"""Gap-filling sensors over a real instance: real Blaze runs against the sandbox leave gaps, the sensor asks for
exactly those as ranges, never twice while they are queued, and no more than its caps."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from backfill_platform.automation import sensors, settings
from backfill_platform.automation.jobs import AUTOMATION_TAG, Lane, lanes
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.settings import API_TAG, RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources import load, named
from backfill_platform_tests.sources.helpers import drop_schemas
from backfill_platform_tests.sources.test_blaze import ALL, CHECKS, resources

WINDOW = {"BACKFILL_BLAZE_GAPS_FROM": "2024-03-01", "BACKFILL_BLAZE_GAPS_TO": "2024-03-10"}


def lane_and_sensor(environ: dict[str, str]) -> tuple[Lane, dg.SensorDefinition]:
    loaded = named("blaze", load(environ))
    [lane] = lanes(loaded)
    return lane, sensors.build_sensor(lane, lane.job(), settings.read(loaded, environ))


def tick(instance: dg.DagsterInstance, sensor: dg.SensorDefinition) -> tuple[list[dg.RunRequest], str, str | None]:
    """The run requests of one tick, the message it gave, and the cursor."""
    context = dg.build_sensor_context(instance=instance)
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], result.skip_message or "", context.cursor
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), "", result.cursor


def ranges(requests: list[dg.RunRequest]) -> list[tuple[str, str]]:
    return [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests]


def run(instance: dg.DagsterInstance, sandbox, db_url: str, first: str, last: str) -> dg.ExecuteInProcessResult:
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    return dg.materialize(
        [*ALL, *CHECKS], resources=resources(sandbox, db_url), instance=instance, tags=tags, raise_on_error=False
    )


@pytest.fixture
def instance(db_url: str) -> Iterator[dg.DagsterInstance]:
    """A fresh Dagster instance per test (Dagster's test instance: these are unit tests of the sensor's logic;
    the daemon test and the tick benchmark use the platform's PostgreSQL storage)."""
    with dg.instance_for_test() as inst:
        yield inst


def queue(instance: dg.DagsterInstance, lane: Lane, requests: list[dg.RunRequest]) -> None:
    """Create the requested runs as the sensor daemon does before it submits them to the queue; they stay there
    (NOT_STARTED: a QUEUED run needs a code-location origin; the daemon test sees real queued runs)."""
    defs = dg.Definitions.merge(
        lane.source.definitions(), dg.Definitions(jobs=[lane.job()], resources={"io_manager": PostgresIOManager()})
    )
    job = defs.resolve_job_def(lane.job_name)
    for request in requests:
        created = instance.create_run_for_job(job, tags=dict(request.tags))
        assert created.status == dg.DagsterRunStatus.NOT_STARTED


def test_gaps_become_exactly_their_ranges_and_a_queued_range_is_not_asked_again(sandbox, db_url, instance) -> None:
    drop_schemas(db_url, "blaze")
    for first, last in (("2024-03-01", "2024-03-02"), ("2024-03-05", "2024-03-05"), ("2024-03-07", "2024-03-08")):
        assert run(instance, sandbox, db_url, first, last).success
    assert run(instance, sandbox, db_url, "2024-03-10", "2024-03-10").success
    # 2024-03-06 fails: the API answers a page of the wrong shape, nothing of the day is committed
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 200, "body": '{"unexpected": true}'}]})
    assert not run(instance, sandbox, db_url, "2024-03-06", "2024-03-06").success
    sandbox.reset()

    lane, sensor = lane_and_sensor(
        {**WINDOW, "BACKFILL_BLAZE_GAPS_PER_TICK": "5", "BACKFILL_BLAZE_GAPS_IN_FLIGHT": "5"}
    )
    requests, _, cursor = tick(instance, sensor)
    assert ranges(requests) == [
        ("2024-03-03", "2024-03-04"),
        ("2024-03-06", "2024-03-06"),
        ("2024-03-09", "2024-03-09"),
    ]
    assert all(r.tags[API_TAG] == "blaze" and r.tags[AUTOMATION_TAG] == "gaps" for r in requests)
    assert cursor is not None and json.loads(cursor)["complete"] == 6
    again, _, _ = tick(instance, sensor)
    assert [r.run_key for r in again] == [r.run_key for r in requests]  # a repeated tick is idempotent

    queue(instance, lane, requests)
    later, message, cursor = tick(instance, sensor)
    assert later == []
    assert message == "6 of 10 partitions complete, no gaps; 4 partitions in flight"
    assert cursor is not None and json.loads(cursor)["busy"] == 4


def test_over_an_empty_window_a_tick_asks_for_the_first_ranges_only(db_url, instance) -> None:
    drop_schemas(db_url, "blaze")
    env = {
        "BACKFILL_BLAZE_GAPS_FROM": "2023-01-01",
        "BACKFILL_BLAZE_GAPS_TO": "2023-01-20",
        "BACKFILL_BLAZE_GAPS_RUN_DAYS": "7",
        "BACKFILL_BLAZE_GAPS_PER_TICK": "2",
        "BACKFILL_BLAZE_GAPS_IN_FLIGHT": "3",
    }
    lane, sensor = lane_and_sensor(env)
    requests, _, _ = tick(instance, sensor)
    assert ranges(requests) == [("2023-01-01", "2023-01-07"), ("2023-01-08", "2023-01-14")]
    queue(instance, lane, requests[:1])  # one gap run in flight: a cap of three leaves room for two
    requests, _, _ = tick(instance, sensor)
    assert ranges(requests) == [("2023-01-08", "2023-01-14"), ("2023-01-15", "2023-01-20")]
    queue(instance, lane, requests)
    nothing, message, _ = tick(instance, sensor)
    assert nothing == [] and message == "0 of 20 partitions complete, no gaps; 20 partitions in flight"


def test_suspect_partitions_are_fetched_again_once(sandbox, db_url, instance) -> None:
    """Zero rows on a day with sales, and a day a check failed after its commit, are gaps; what a gap run
    committed stays, even if it is still suspect."""
    drop_schemas(db_url, "blaze")
    empty = {"kind": "status", "status": 200, "body": '{"values": [], "total": 0}'}
    sandbox.faults("blaze", {"scripted": [empty]})
    assert run(instance, sandbox, db_url, "2024-04-01", "2024-04-01").success  # committed with zero rows
    sandbox.reset()
    assert run(instance, sandbox, db_url, "2024-04-02", "2024-04-02").success
    with psycopg.connect(db_url) as conn:  # sales lost after the commit: their items are orphans now
        conn.execute("DELETE FROM blaze.transactions WHERE id IN (SELECT id FROM blaze.transactions LIMIT 5)")
    sandbox.reset()
    checked = dg.materialize(
        [*ALL, *CHECKS],
        selection=dg.AssetSelection.checks(*CHECKS),
        resources=resources(sandbox, db_url),
        instance=instance,
        tags={"dagster/partition": "2024-04-02"},
    )
    failing: dict[str, list[str | None]] = {}
    for e in checked.get_asset_check_evaluations():
        if not e.passed:
            failing.setdefault(e.check_name, []).append(e.partition)
    assert sandbox.stats()["routes"].get("blaze transactions", {}).get("requests", 0) == 0
    # the totals check compares with the totals the fetch saw: no API call, and it names the day
    assert failing == {"transactions_match_api_totals": ["2024-04-02"], "items_have_transactions": ["2024-04-02"]}

    env = {"BACKFILL_BLAZE_GAPS_FROM": "2024-04-01", "BACKFILL_BLAZE_GAPS_TO": "2024-04-02"}
    _, sensor = lane_and_sensor(env)
    requests, _, _ = tick(instance, sensor)
    assert ranges(requests) == [("2024-04-01", "2024-04-02")]
    # the gap run finds the API still empty for these days: committed by a gap run, they are not asked for again
    sandbox.faults("blaze", {"scripted": [empty]})
    gap_run = dg.materialize(
        [*ALL, *CHECKS], resources=resources(sandbox, db_url), instance=instance, tags=dict(requests[0].tags)
    )
    assert gap_run.success
    later, message, _ = tick(instance, sensor)
    assert later == [] and message == "2 of 2 partitions complete, no gaps"
