"""What every source's asset checks are built on: they read only the partitions of the run they follow (a ranged
run's range, a single-partition run's key, else the table's latest day), so their cost scales with the run, not the
table; and a check of days is declared with its asset's partitions, so Dagster records one status per day (the
UI's partitioned check view, and what the gap sensor refetches).

Partitioned checks are a preview in Dagster 1.13, and the partitions exist only once a source's settings are read:
a `DailyCheck` is declared without them and built by `LoadedSource.checks` with its asset's partitions_def."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported; without it the evaluation counts stale
)

from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG


def no_latest_day() -> date | None:
    return None


def run_days(context: dg.AssetCheckExecutionContext, latest: Callable[[], date | None] = no_latest_day) -> list[date]:
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


@dataclass(frozen=True)
class Findings:
    """What a check of days found: the bad days (partition key → what is wrong there) and figures of the whole
    run, which every day's evaluation carries under `run_…` names."""

    bad: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)


Find = Callable[[dg.AssetCheckExecutionContext, list[date]], Findings]


@dataclass(frozen=True)
class DailyCheck:
    """A check of an asset's days, built per source with that asset's partitions (see the module docstring)."""

    asset: dg.AssetKey
    name: str
    description: str
    find: Find
    latest: Callable[[], date | None] = no_latest_day  # the day a check launched without partitions looks at
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset, self.name)

    def build(self, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=self.asset, name=self.name, description=self.description, partitions_def=partitions_def)
        # Dagster types a check's return as AssetCheckResult; its executor takes the evaluations and Output too.
        def check(context: dg.AssetCheckExecutionContext) -> Any:
            days = run_days(context, self.latest)
            yield from per_partition(context, self.key, days, self.find(context, days), self.severity)

        return check


def daily_check(
    asset: dg.AssetKey,
    description: str,
    latest: Callable[[], date | None] = no_latest_day,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> Callable[[Find], DailyCheck]:
    """Declares the decorated `find(context, days) -> Findings` as a check of days named after it."""

    def declare(find: Find) -> DailyCheck:
        return DailyCheck(asset, find.__name__, description, find, latest, severity)

    return declare


def per_partition(
    context: dg.AssetCheckExecutionContext,
    key: dg.AssetCheckKey,
    days: Sequence[date],
    found: Findings,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation of check `key` per day of the run, then the check's (empty) step output.

    Per day, because an AssetCheckResult of a ranged run records one unpartitioned evaluation (Dagster takes its
    partition only from a one-partition run's key). Each evaluation names the materialization it checked, else
    Dagster's check state counts it stale and the UI shows nothing. A check of an unpartitioned asset (or one
    launched with no day) records one evaluation for the run."""
    spec = next(s for s in context.check_specs if s.key == key)
    figures = {
        "run_days": len(days),
        "run_first_day": days[0].isoformat() if days else "none",
        "run_last_day": days[-1].isoformat() if days else "none",
        **{f"run_{name}": value for name, value in found.run.items()},
    }
    if spec.partitions_def is None or not days:
        yield dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=not found.bad,
            severity=severity,
            blocking=spec.blocking,
            metadata={**figures, "failed_days": dg.MetadataValue.json(dict(sorted(found.bad.items())))},
        )
    partitioned = [d.isoformat() for d in days] if spec.partitions_def is not None else []
    targets = _latest_materializations(context.instance, key.asset_key, partitioned)
    for partition in partitioned:
        yield dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=partition not in found.bad,
            partition=partition,
            target_materialization_data=targets.get(partition),
            severity=severity,
            blocking=spec.blocking,
            metadata={
                **({"details": dg.MetadataValue.json(found.bad[partition])} if partition in found.bad else {}),
                **figures,
            },
        )
    yield dg.Output(None, output_name=context.op_execution_context.assets_def.get_output_name_for_asset_check_key(key))


def _latest_materializations(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Per partition, its latest materialization: pages of the asset's records for those partitions, newest first."""
    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    cursor = None
    while partitions and len(found) < len(partitions):
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=list(partitions)),
            limit=2 * len(partitions),
            cursor=cursor,
        )
        for record in page.records:
            partition = record.partition_key
            if partition is not None and partition not in found:
                found[partition] = AssetCheckEvaluationTargetMaterializationData(
                    storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
                )
        if not page.has_more:
            break
        cursor = page.cursor
    return found
