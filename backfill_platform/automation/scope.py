"""The partitions an asset check looks at: those of the run it follows, so its cost scales with the run, not the
table. A ranged run's range, a single-partition run's key, else (a check launched alone) the table's latest day."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported; without it the evaluation counts stale
)

from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG

FAILED_PARTITIONS = "failed_partitions"  # a check's metadata: the partitions it found wrong


def run_days(context: dg.AssetCheckExecutionContext, latest: Callable[[], date | None]) -> list[date]:
    """The daily partitions of the run the check belongs to; `latest()` (one indexed lookup) when it has none."""
    tags = context.run.tags
    if RANGE_START_TAG in tags:
        first, last = date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
    elif "dagster/partition" in tags:
        first = last = date.fromisoformat(tags["dagster/partition"])
    else:
        found = latest()
        if found is None:
            return []
        first = last = found
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def result(days: Sequence[date], bad: dict[str, Any], **metadata: Any) -> dg.AssetCheckResult:
    """Passed when no day is bad; the bad days are named, per day, under `failed_partitions` (the gap sensor
    refetches them) and `details`."""
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "days_checked": len(days),
            "first_day": days[0].isoformat() if days else "none",
            "last_day": days[-1].isoformat() if days else "none",
            FAILED_PARTITIONS: dg.MetadataValue.json(sorted(bad)),
            "details": dg.MetadataValue.json(bad),
            **metadata,
        },
    )


def per_partition(
    context: dg.AssetCheckExecutionContext, days: Sequence[date], bad: dict[str, Any], **metadata: Any
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation per day of the run, for a check declared with its asset's partitions_def: the UI and
    `get_asset_check_partition_info` then show each day's status, where an AssetCheckResult of a ranged run
    records one unpartitioned evaluation (Dagster takes its partition only from a one-partition run's key).

    Each evaluation names the materialization it checked (else Dagster's check state counts it stale and shows
    nothing); the step's own output is an empty Output."""
    [spec] = context.check_specs
    instance = context.instance
    for day in days:
        key = day.isoformat()
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=spec.asset_key, asset_partitions=[key]), limit=1
        ).records
        target = (
            AssetCheckEvaluationTargetMaterializationData(
                storage_id=found[0].storage_id, run_id=found[0].event_log_entry.run_id, timestamp=found[0].timestamp
            )
            if found
            else None
        )
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=key not in bad,
            partition=key,
            target_materialization_data=target,
            blocking=spec.blocking,
            metadata={**({"details": dg.MetadataValue.json(bad[key])} if key in bad else {}), **metadata},
        )
    yield dg.Output(None, output_name=context.op_def.output_defs[0].name)
