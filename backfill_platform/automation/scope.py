"""The partitions an asset check looks at: those of the run it follows, so its cost scales with the run, not the
table. A ranged run's range, a single-partition run's key, else (a check launched alone) the table's latest day."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

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
