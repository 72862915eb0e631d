"""Blaze against the sandbox: ground truth with the fewest calls, late voids, kill and resume, faults, checks."""

import math
from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform.sources import load, named
from backfill_platform.sources.blaze.tables import TRANSACTION_ITEMS, TRANSACTIONS
from backfill_platform_tests.sources.helpers import drop_schemas, kill_after_commits, partition_metadata

CFG = SandboxConfig()
FIRST, LAST = date(2024, 3, 1), date(2024, 3, 10)
RANGE = {
    "dagster/asset_partition_range_start": FIRST.isoformat(),
    "dagster/asset_partition_range_end": LAST.isoformat(),
}
ALL = list(named("blaze", load()).assets)
CHECKS = named("blaze", load()).checks


def days(first: date = FIRST, last: date = LAST) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def expected(revision: int = 0, first: date = FIRST, last: date = LAST) -> dict[str, dict]:
    return {t["id"]: t for d in days(first, last) for t in truth.transactions_for_day(CFG.seed, d, revision)}


def resources(sandbox, db_url: str, **kw) -> dict:
    blaze = BlazeApi(
        base_url=f"{sandbox.origin}/blaze",
        rate="7500/5m",
        partner_key=CFG.blaze_partner_key,
        api_key=CFG.blaze_api_key,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        **kw,
    )
    return {"blaze": blaze, "io_manager": PostgresIOManager(database_url=db_url)}


@pytest.fixture
def clean(db_url: str) -> str:
    return drop_schemas(db_url, "blaze")


def stored(db_url: str) -> dict[str, tuple]:
    with psycopg.connect(db_url) as conn:
        return {
            r[0]: r[1:]
            for r in conn.execute("SELECT id, status, business_date, item_count, payload FROM blaze.transactions")
        }


def item_count(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM blaze.transaction_items").fetchone()[0]


def calls_for(windows: list[tuple[date, date]], revision: int = 0) -> int:
    return sum(math.ceil(len(expected(revision, a, b)) / 100) for a, b in windows)


def test_ten_day_range_lands_ground_truth_with_the_fewest_calls(sandbox, clean) -> None:
    result = dg.materialize([*ALL, *CHECKS], resources=resources(sandbox, clean), tags=RANGE)
    assert result.success
    truth_rows = expected()
    got = stored(clean)
    assert got.keys() == truth_rows.keys()
    assert all(got[i][0] == truth_rows[i]["status"] for i in got)
    assert item_count(clean) == sum(len(t["cart"]["items"]) for t in truth_rows.values())
    # 10 days = a 7-day and a 3-day window; pages of 100; no call after the last page.
    # The totals check compares the totals the fetch saw: no call of its own.
    assert sandbox.stats()["routes"]["blaze transactions"]["requests"] == calls_for(
        [(FIRST, FIRST + timedelta(days=6)), (FIRST + timedelta(days=7), LAST)]
    )
    evaluations = result.get_asset_check_evaluations()
    assert all(c.passed for c in evaluations)
    # one evaluation per day of the run (a check of days), each carrying the run's figures
    totals = [c for c in evaluations if c.check_name == "transactions_match_api_totals"]
    assert [c.partition for c in totals] == [d.isoformat() for d in days()]
    assert {(c.metadata["run_windows_checked"].value, c.metadata["run_days"].value) for c in totals} == {(2, 10)}
    # Each partition's page shows that partition: its own rows and its share of the window's calls.
    per_day = partition_metadata(result, TRANSACTIONS.key)
    per_day_items = partition_metadata(result, TRANSACTION_ITEMS.key)
    assert sorted(per_day) == sorted(per_day_items) == [d.isoformat() for d in days()]
    for day in days():
        day_truth = truth.transactions_for_day(CFG.seed, day)
        assert per_day[day.isoformat()]["rows"] == len(day_truth)
        assert per_day_items[day.isoformat()]["rows"] == sum(len(t["cart"]["items"]) for t in day_truth)
        assert "partitions_written" not in per_day[day.isoformat()]
    assert sum(m["api_calls"] for m in per_day.values()) == calls_for(
        [(FIRST, FIRST + timedelta(days=6)), (FIRST + timedelta(days=7), LAST)]
    )


def test_business_day_is_the_shop_local_day(sandbox, clean) -> None:
    assert dg.materialize(
        ALL, selection=[TRANSACTIONS.key], resources=resources(sandbox, clean), partition_key="2024-03-05"
    ).success
    with psycopg.connect(clean) as conn:
        wrong = conn.execute(
            "SELECT count(*) FROM blaze.transactions WHERE "
            "(processed_at AT TIME ZONE 'America/Los_Angeles')::date <> business_date"
        ).fetchone()[0]
        dates = conn.execute("SELECT DISTINCT business_date FROM blaze.transactions").fetchall()
    assert wrong == 0 and dates == [(date(2024, 3, 5),)]


def test_rerunning_a_day_after_a_late_void_reflects_it(sandbox, clean) -> None:
    res = resources(sandbox, clean)
    day = "2024-03-04"
    assert dg.materialize(ALL, resources=res, partition_key=day).success
    items_before = item_count(clean)
    sandbox.set_revision("blaze", 1)
    assert dg.materialize(ALL, resources=res, partition_key=day).success  # a fresh run refetches the day
    got = stored(clean)
    late = {t["id"]: t for t in truth.transactions_for_day(CFG.seed, date(2024, 3, 4), revision=1)}
    voided = [i for i, t in late.items() if t["status"] == "Void"]
    assert voided and all(got[i][0] == "Void" for i in voided)
    assert item_count(clean) == sum(len(t["cart"]["items"]) for t in late.values()) < items_before


def test_injected_429s_and_5xx_are_survived_with_identical_data(sandbox, clean) -> None:
    sandbox.faults("blaze", {"probability": {"429": 0.15, "status": 0.1}})
    result = dg.materialize(ALL, resources=resources(sandbox, clean), tags=RANGE)
    assert result.success
    assert stored(clean).keys() == expected().keys()
    stats = sandbox.stats()["apis"]["blaze"]
    assert stats.get("429", 0) > 0 and stats.get("fault_status", 0) > 0
    per_day = partition_metadata(result, TRANSACTIONS.key)
    windows = {m["window"]: m for m in per_day.values()}
    assert sum(m["window_429s"] for m in windows.values()) == stats["429"]
    assert sum(m["api_calls"] for m in per_day.values()) == sandbox.stats()["routes"]["blaze transactions"]["requests"]
    assert sum(m["rows"] for m in per_day.values()) == len(expected())


def test_malformed_page_fails_in_one_line_and_writes_nothing(sandbox, clean) -> None:
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 200, "body": '{"unexpected": true}'}]})
    with pytest.raises(Exception, match="blaze /api/v1/partner/transactions: malformed page"):
        dg.materialize(ALL, resources=resources(sandbox, clean), partition_key="2024-03-02")
    with psycopg.connect(clean) as conn:
        assert conn.execute("SELECT to_regclass('blaze.transactions')").fetchone() == (None,)


@pytest.mark.slow
def test_killed_mid_range_then_retried_fetches_no_committed_day_again(sandbox, clean) -> None:
    week = (FIRST, FIRST + timedelta(days=6))
    first_window_calls = calls_for([week])
    # The first request of the second window hangs: the run is killed there, after the first week committed.
    sandbox.faults("blaze", {"scripted": [{"kind": "slow", "seconds": 600, "after": first_window_calls}]})
    tags = {**RANGE, "dagster/backfill": "blaze-kill"}
    script = f"""
        import dagster as dg
        from backfill_platform_tests.sources.test_blaze import ALL, resources
        class S: origin = {sandbox.origin!r}
        dg.materialize(ALL, resources=resources(S, {clean!r}, timeout_s=900), tags={tags!r})
    """
    # settle: the second window's first request is then hanging in the sandbox
    kill_after_commits(script, clean, "blaze/transactions", 7, settle_s=0.3)
    assert sandbox.stats()["routes"]["blaze transactions"]["requests"] == first_window_calls + 1
    sandbox.reset()
    result = dg.materialize(ALL, resources=resources(sandbox, clean), tags=tags)
    assert result.success
    # The retry asked only for the last three days: one window, its pages, nothing of the committed week.
    assert sandbox.stats()["routes"]["blaze transactions"]["requests"] == calls_for([(FIRST + timedelta(days=7), LAST)])
    assert stored(clean).keys() == expected().keys()
    with psycopg.connect(clean) as conn:
        runs = conn.execute(
            "SELECT partition, run_id FROM backfill_platform.ledger WHERE asset = 'blaze/transactions' "
            "ORDER BY partition"
        ).fetchall()
    assert [r for _, r in runs].count(result.run_id) == 3 and len(runs) == 10
