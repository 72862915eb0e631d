"""A wallet added to the configuration: the committed days that lack it are gaps, coalesced into ranges; the gap run
walks only the new wallet, and then the days are complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import psycopg
import pytest

from backfill_platform import status
from backfill_platform.automation import gaps, sensors, settings
from backfill_platform.automation.jobs import Lane, lanes
from backfill_platform.sources import load, named
from backfill_platform.status import compact_ranges
from backfill_platform_tests.automation.test_sensors import ranges, tick
from backfill_platform_tests.sources.helpers import drop_schemas, partition_metadata
from backfill_platform_tests.sources.stacks_fixtures import BUSY, pages, range_tags, resources, truth, wallet_assets

A, B, C = BUSY
V3 = "stacks v3/principals/transactions"
FIRST = date(2026, 10, 22)


def day(n: int) -> date:
    return date(2026, 10, n)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def gap_sensor(wallets: tuple[str, ...]) -> tuple[Lane, settings.AutomationSettings, dg.SensorDefinition]:
    environ = {
        "BACKFILL_STACKS_START": FIRST.isoformat(),
        "BACKFILL_STACKS_WALLETS": ",".join(wallets),
        "BACKFILL_STACKS_GAPS_FROM": day(22).isoformat(),
        "BACKFILL_STACKS_GAPS_TO": day(26).isoformat(),
        "BACKFILL_STACKS_GAPS_PER_TICK": "5",
        "BACKFILL_STACKS_GAPS_IN_FLIGHT": "5",
    }
    loaded = named("stacks", load(environ))
    [lane] = lanes(loaded)
    cfg = settings.read(loaded, environ)
    return lane, cfg, sensors.build_sensor(lane, lane.job(), cfg)


def gap_run(
    instance: dg.DagsterInstance, res: dict, request: dg.RunRequest, wallets: tuple[str, ...] = (A, B, C)
) -> dg.ExecuteInProcessResult:
    """The requested run as the daemon would launch it (its tags), with `wallets` configured."""
    return dg.materialize(wallet_assets(wallets), resources=res, instance=instance, tags=dict(request.tags))


def v3_calls(sandbox) -> int:
    return sandbox.stats()["routes"].get(V3, {}).get("requests", 0)


def test_days_lacking_a_new_wallet_are_asked_for_and_the_run_walks_only_it(sandbox, db_url, instance) -> None:
    drop_schemas(db_url, "stacks")
    res = resources(sandbox.origin, db_url)
    for wallets, first, last in (((A, B, C), 22, 22), ((A, B), 23, 23), ((A, B, C), 24, 24), ((A, B), 25, 26)):
        run = dg.materialize(
            wallet_assets(wallets), resources=res, instance=instance, tags=range_tags(day(first), day(last))
        )
        assert run.success
    # With the list as committed, every day is complete; with C added, the days without it are gaps.
    assert tick(instance, gap_sensor((A, B))[2])[0] == []
    lane, cfg, sensor = gap_sensor((A, B, C))
    requests, _, cursor = tick(instance, sensor)
    assert ranges(requests) == [("2026-10-23", "2026-10-23"), ("2026-10-25", "2026-10-26")]
    assert cursor is not None and json.loads(cursor)["lacking_members"] == 3
    seen = gaps.survey(instance, db_url, lane, cfg.gaps, datetime.now(UTC), cfg.schedule.time_of_day)
    assert gaps.plan(seen, cfg.gaps).message == (
        "2 of 5 partitions complete, 2 gaps: 2026-10-23, 2026-10-25..2026-10-26 (3 lacking configured members); "
        "2 requested, 0 waiting"
    )

    sandbox.reset()
    assert gap_run(instance, res, requests[0]).success
    assert v3_calls(sandbox) == pages(C, day(23), day(23))  # only C is walked; A and B are held already
    assert truth(C, day(23), day(23))  # C has transactions that day: the count above is of a real walk
    requests, _, _ = tick(instance, sensor)
    assert ranges(requests) == [("2026-10-25", "2026-10-26")]
    assert gap_run(instance, res, requests[0]).success
    nothing, message, cursor = tick(instance, sensor)
    assert nothing == [] and message == "5 of 5 partitions complete, no gaps"
    assert cursor is not None and json.loads(cursor)["lacking_members"] == 0


def test_days_holding_unsettled_rows_are_fetched_again_once(sandbox, db_url, instance) -> None:
    """A transaction not final yet leaves its wallet unsettled on that day: the day is a gap; when the gap run
    finds it still pending, the day stays as committed (no refetch on every tick)."""
    drop_schemas(db_url, "stacks")
    res = resources(sandbox.origin, db_url)
    try:
        sandbox.set_revision("stacks", 1)  # some transactions listed as pending
        assert dg.materialize(
            wallet_assets((A, B)), resources=res, instance=instance, tags=range_tags(day(22), day(26))
        ).success
        with psycopg.connect(db_url) as conn:
            pending = conn.execute(
                "SELECT DISTINCT partition FROM backfill_platform.ledger WHERE cardinality(unsettled) > 0"
            ).fetchall()
        assert pending
        _, _, sensor = gap_sensor((A, B))
        requests, _, cursor = tick(instance, sensor)
        assert ranges(requests) == compact_ranges(p for (p,) in pending)
        assert cursor is not None and json.loads(cursor)["lacking_members"] == len(pending)
        for request in requests:
            assert dg.materialize(
                wallet_assets((A, B)), resources=res, instance=instance, tags=dict(request.tags)
            ).success
        nothing, message, _ = tick(instance, sensor)
        assert nothing == [] and message == "5 of 5 partitions complete, no gaps"
    finally:
        sandbox.set_revision("stacks", 0)


def test_alpaca_days_lacking_a_new_symbol_are_asked_for_and_the_run_fetches_only_it(sandbox, db_url, instance) -> None:
    """The ledger records Alpaca's members as symbol|feed|adjustment: the source's declared members match them, so
    the universe as committed leaves nothing to do, and an added symbol makes exactly the committed range a gap."""
    from backfill_platform_tests.sources.test_alpaca import resources as alpaca_resources
    from backfill_platform_tests.sources.test_alpaca import span

    drop_schemas(db_url, "alpaca")

    def lane_of(symbols: str) -> tuple[dg.AssetsDefinition, dg.SensorDefinition]:
        environ = {
            "BACKFILL_ALPACA_SYMBOLS": symbols,
            "BACKFILL_ALPACA_TIMEFRAMES": "1Day",
            "BACKFILL_ALPACA_GAPS_FROM": "2024-03-04",
            "BACKFILL_ALPACA_GAPS_TO": "2024-03-08",
        }
        loaded = named("alpaca", load(environ))
        [lane] = lanes(loaded)
        [bars] = loaded.assets
        return bars, sensors.build_sensor(lane, lane.job(), settings.read(loaded, environ))

    res = alpaca_resources(sandbox, db_url)
    before, as_committed = lane_of("MSFT,AAPL")
    assert dg.materialize(
        [before], resources=res, instance=instance, tags=span(date(2024, 3, 4), date(2024, 3, 8))
    ).success
    with psycopg.connect(db_url) as conn:  # the ledger keeps members sorted: the sensor's one-array comparison
        recorded = conn.execute("SELECT DISTINCT members FROM backfill_platform.ledger WHERE asset LIKE 'alpaca/%'")
        assert [r[0] for r in recorded] == [["AAPL|iex|raw", "MSFT|iex|raw"]]
    assert tick(instance, as_committed)[0] == []
    after, sensor = lane_of("NVDA,AAPL,MSFT")
    requests, _, _ = tick(instance, sensor)
    assert ranges(requests) == [("2024-03-04", "2024-03-08")]
    wider = named("alpaca", load({"BACKFILL_ALPACA_SYMBOLS": "AAPL,MSFT,NVDA", "BACKFILL_ALPACA_TIMEFRAMES": "1Day"}))

    def bars_status() -> status.AssetStatus:
        [found] = status.report(db_url, [wider], "alpaca", date(2024, 3, 4), date(2024, 3, 8), instance)
        return found

    lacking = bars_status()  # `status` says the same as the sensor: every day lacks NVDA
    assert (lacking.materialized_count, lacking.missing_count, lacking.complete) == (0, 5, False)
    sandbox.reset()
    result = dg.materialize([after], resources=res, instance=instance, tags=dict(requests[0].tags))
    assert result.success
    assert (bars_status().materialized_count, bars_status().complete) == (5, True)
    assert sandbox.stats()["routes"]["alpaca stocks/bars"]["requests"] == 1  # one call, all five days
    assert {m["symbols_requested"] for m in partition_metadata(result, after.key).values()} == {1}  # NVDA alone
    nothing, message, _ = tick(instance, sensor)
    assert nothing == [] and message == "5 of 5 partitions complete, no gaps"
