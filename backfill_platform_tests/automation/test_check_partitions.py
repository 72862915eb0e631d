"""A check of days, built with its asset's partitions, records one status per day of a ranged run (what the UI's
partitioned check view reads, and what the gap sensor refetches); Blaze's own checks do the same."""

import dataclasses
from datetime import date

import dagster as dg
import psycopg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionResolvedStatus,
)

from backfill_platform.automation import sensors, settings
from backfill_platform.automation.jobs import lanes
from backfill_platform.database import database_url
from backfill_platform.settings import LINEAGE_TAG, RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources import load
from backfill_platform.sources.blaze import SOURCE
from backfill_platform.sources.blaze.tables import TRANSACTIONS
from backfill_platform.sources.checks import Findings, daily_check
from backfill_platform_tests.sources.helpers import drop_schemas
from backfill_platform_tests.sources.test_blaze import ALL, CHECKS, resources

[PARTITIONS] = {a.partitions_def for a in ALL if TRANSACTIONS.key in a.keys}
assert isinstance(PARTITIONS, dg.TimeWindowPartitionsDefinition)
EMPTY = '{"values": [], "total": 0}'


@daily_check(TRANSACTIONS.key, "Each day of the run has sales.")
def has_sales(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    with psycopg.connect(database_url()) as conn:
        counts = dict(
            conn.execute(
                "SELECT business_date, count(*) FROM blaze.transactions WHERE business_date = ANY(%s) GROUP BY 1",
                (days,),
            ).fetchall()
        )
    return Findings({d.isoformat(): "no sales" for d in days if not counts.get(d)})


HAS_SALES = has_sales.build(PARTITIONS)


def test_a_ranged_run_records_each_days_check_status(sandbox, db_url) -> None:
    drop_schemas(db_url, "blaze")
    # the API answers 2024-03-02 empty: committed with zero rows; the ranged run resumes that lineage around it
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 200, "body": EMPTY}]})
    lineage = {LINEAGE_TAG: "per-partition-checks"}
    assert dg.materialize(ALL, resources=resources(sandbox, db_url), partition_key="2024-03-02", tags=lineage).success
    sandbox.reset()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ALL, *CHECKS, HAS_SALES],
            resources=resources(sandbox, db_url),
            instance=instance,
            tags={RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-03", **lineage},
        )
        assert result.success
        mine = [e for e in result.get_asset_check_evaluations() if e.check_name == has_sales.name]
        evaluations = {e.partition: e.passed for e in mine}
        assert evaluations == {"2024-03-01": True, "2024-03-02": False, "2024-03-03": True}
        # Blaze's own checks are checks of days too: one evaluation per check and day
        others = sorted((e.check_name, e.partition) for e in result.get_asset_check_evaluations() if e not in mine)
        assert others == sorted((c.check_key.name, f"2024-03-0{d}") for c in CHECKS for d in (1, 2, 3))

        infos = instance.event_log_storage.get_asset_check_partition_info([HAS_SALES.check_key])
        by_day = {i.partition_key: (i.latest_execution_status, i.is_current) for i in infos}
        assert by_day == {
            "2024-03-01": (AssetCheckExecutionRecordStatus.SUCCEEDED, True),
            "2024-03-02": (AssetCheckExecutionRecordStatus.FAILED, True),
            "2024-03-03": (AssetCheckExecutionRecordStatus.SUCCEEDED, True),
        }
        # the state the UI's partitioned check view (GraphQL's AssetCheckState) is built from
        [state] = instance.event_log_storage.get_asset_check_state([(HAS_SALES.check_key, PARTITIONS)]).values()
        failed = state.subsets[AssetCheckExecutionResolvedStatus.FAILED].subset_value
        passed = state.subsets[AssetCheckExecutionResolvedStatus.SUCCEEDED].subset_value
        assert list(failed.get_partition_keys()) == ["2024-03-02"]
        assert list(passed.get_partition_keys()) == ["2024-03-01", "2024-03-03"]

        # the gap sensor reads that status: the failed day, and only it, is asked for again
        sensor = gap_sensor()
        requests = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(requests, dg.SensorResult)
        assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests.run_requests or []] == [
            ("2024-03-02", "2024-03-02")
        ]


def gap_sensor() -> dg.SensorDefinition:
    """Blaze's gap sensor with `has_sales` as its only check, and no day where rows are expected (so the
    zero-row day is a gap only through the check's per-partition status)."""
    declared = dataclasses.replace(
        SOURCE,
        checks=(has_sales,),
        automation=dataclasses.replace(SOURCE.automation, rows_expected=lambda day: False),
    )
    environ = {"BACKFILL_BLAZE_GAPS_FROM": "2024-03-01", "BACKFILL_BLAZE_GAPS_TO": "2024-03-03"}
    [loaded] = load(environ, [declared])
    [lane] = lanes(loaded)
    return sensors.build_sensor(lane, lane.job(), settings.read(loaded, environ))
