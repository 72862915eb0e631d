"""Benchmarks: a gap-sensor tick over ~4,000 partitions (goal under 2 s); check seconds independent of table size."""

import json
from pathlib import Path

import dagster as dg
import pytest

from backfill_platform_tests.sources.helpers import drop_schemas
from benchmarks import automation


@pytest.mark.benchmark
def test_a_tick_over_4000_partitions_takes_under_two_seconds(db_url: str, dagster_home: Path) -> None:
    drop_schemas(db_url, "blaze")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = automation.tick(instance, db_url)
    print("\n" + result.report())
    assert result.partitions >= 4000
    assert max(result.ticks_s) < 2.0


@pytest.mark.benchmark
def test_a_tick_over_4000_partitions_with_200_members_a_day_takes_under_two_seconds(
    db_url: str, dagster_home: Path
) -> None:
    drop_schemas(db_url, "stacks")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = automation.tick(instance, db_url, wallets=200)
    print("\n" + result.report())
    assert result.partitions >= 4000
    assert json.loads(result.message)["lacking_members"] == 3  # a tick that requests runs returns its cursor
    assert max(result.ticks_s) < 2.0


@pytest.mark.benchmark
def test_check_seconds_on_a_one_day_run_do_not_grow_with_the_table(db_url: str) -> None:
    result = automation.checks(db_url)
    print("\n" + result.report())
    assert result.sizes[1] >= 9 * result.sizes[0]
    small, large = (sum(per_check.values()) for per_check in result.seconds)
    assert large < 2 * small + 0.5
