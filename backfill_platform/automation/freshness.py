"""Freshness by partition: the latest partition due by now is committed, else the check fails (red in the UI).

Dagster's FreshnessPolicy looks at the latest materialization of any partition, so a backfill of an old day would
make a late source look fresh. This check asks about the one partition that should be in: the latest whose data
is final, that expects rows, and whose schedule tick plus `BACKFILL_<SOURCE>_FRESHNESS_HOURS` has passed. It runs
with every run of the lane's job, and a sensor launches it alone whenever the answer may have changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.automation.jobs import AUTOMATION_TAG, Lane
from backfill_platform.automation.settings import AutomationSettings
from backfill_platform.automation.windows import expected_latest
from backfill_platform.database import database_url
from backfill_platform.settings import PLATFORM_SCHEMA

CHECK_NAME = "fresh"
LEDGER = sql.Identifier(PLATFORM_SCHEMA, "ledger")


def committed(dsn: str, lane: Lane, partition: str) -> tuple[bool, str | None]:
    """Whether every asset of the lane committed `partition`, and the latest partition the first asset holds."""
    assets = [k.to_user_string() for k in lane.asset_keys]
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{PLATFORM_SCHEMA}.ledger",)).fetchone() == (None,):
            return False, None
        row = conn.execute(
            sql.SQL(
                "SELECT count(DISTINCT asset), (SELECT max(partition) FROM {t} WHERE asset = %(first)s) "
                "FROM {t} WHERE asset = ANY(%(assets)s) AND partition = %(partition)s"
            ).format(t=LEDGER),
            {"first": assets[0], "assets": assets, "partition": partition},
        ).fetchone()
    assert row is not None
    return row[0] == len(assets), row[1]


def state(lane: Lane, cfg: AutomationSettings, now: datetime) -> tuple[str | None, datetime | None, bool, str | None]:
    """(partition due, due at, committed, latest committed) as of `now`."""
    found = expected_latest(
        lane.partitions, lane.source.source.automation, cfg.schedule.time_of_day, cfg.freshness_hours, now
    )
    if found is None:
        return None, None, True, None
    key, due_at = found
    present, latest = committed(database_url(), lane, key)
    return key, due_at, present, latest


def check_key(lane: Lane) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(lane.asset_keys[0], CHECK_NAME)


def utc_now() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]


def build_check(lane: Lane, cfg: AutomationSettings, clock: Clock = utc_now) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=lane.asset_keys[0],
        name=CHECK_NAME,
        description=f"The latest partition due is committed: due {cfg.freshness_hours:g} h after the "
        f"{cfg.schedule.time_of_day:%H:%M} ({lane.partitions.timezone}) tick after its data is final.",
    )
    def _fresh() -> dg.AssetCheckResult:
        key, due_at, present, latest = state(lane, cfg, clock())
        metadata = {"partition_due": key or "none yet", "latest_committed": latest or "none"}
        if due_at is not None:
            metadata["due_at"] = due_at.isoformat()
        return dg.AssetCheckResult(passed=present, metadata=metadata)

    return _fresh


def build_sensor(
    lane: Lane, job: dg.UnresolvedAssetJobDefinition, cfg: AutomationSettings, clock: Clock = utc_now
) -> dg.SensorDefinition:
    """Runs the check alone when the partition due changes or arrives: the run key is the answer it expects."""

    @dg.sensor(
        name=f"{lane.name}_freshness",
        job=job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING if cfg.running else dg.DefaultSensorStatus.STOPPED,
        description=f"Re-evaluates {lane.source.source.title}'s freshness check when the partition due changes.",
    )
    def _freshness(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        key, _, present, _ = state(lane, cfg, clock())
        if key is None:
            return dg.SkipReason("no partition is due yet")
        return dg.RunRequest(
            run_key=f"{key}:{'committed' if present else 'late'}",
            asset_selection=[],
            asset_check_keys=[check_key(lane)],
            tags={**lane.tags, AUTOMATION_TAG: "freshness"},
        )

    return _freshness
