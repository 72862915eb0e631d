"""What a gap-filling tick sees: per partition of the history window, complete, missing, failed, suspect or busy,
and the ranged runs to request for the gaps, capped per tick and in flight.

Status comes from the ledger (a commit is the truth that a partition's rows are stored), Dagster's public
`get_status_by_partition` (FAILED, IN_PROGRESS) and run records by tag (runs queued or running over a range,
which a partition status does not show until they start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from backfill_platform.automation.jobs import AUTOMATION_TAG, LANE_TAG, Lane
from backfill_platform.automation.settings import GapSettings
from backfill_platform.automation.windows import day_of, due, existing_keys, latest_final_index
from backfill_platform.backfills import IN_FLIGHT, range_keys
from backfill_platform.io_managers.members import Short, short
from backfill_platform.settings import API_TAG
from backfill_platform.status import Commit, compact_ranges, format_ranges, latest_commits

GAPS = "gaps"
FAILED = AssetCheckExecutionRecordStatus.FAILED
SHOWN_RANGES = 6


@dataclass
class Survey:
    """One tick's view of a lane's history window."""

    keys: Sequence[str]
    complete: int = 0
    gaps: list[str] = field(default_factory=list)  # missing, failed or suspect, not busy, in partition order
    failed: int = 0
    suspect: int = 0
    short_members: int = 0  # committed, but lacking a configured member (or holding one unsettled): also suspect
    busy: int = 0  # in a run that is queued or running
    in_flight_runs: int = 0  # this sensor's runs queued or running
    attempts: dict[str, int] = field(default_factory=dict)  # finished gap runs per partition (for run keys)


def window_keys(lane: Lane, gaps: GapSettings, now: datetime, time_of_day: time) -> Sequence[str]:
    """The history window's partitions: from GAPS_FROM to GAPS_TO, or to the latest complete partition whose daily
    tick has passed (a newer one is the schedule's: fetched once its data is final, not as soon as the day ends)."""
    auto = lane.source.source.automation
    keys = existing_keys(lane.partitions, now)
    last = latest_final_index(lane.partitions, keys, auto, now)
    while last >= 0 and due(lane.partitions, keys[last], auto, time_of_day, 0) > now:
        last -= 1
    first, end = gaps.first.isoformat(), (gaps.last.isoformat() if gaps.last else "9999")
    return [k for k in keys[: last + 1] if first <= k <= end]


def failed_by_checks(instance: dg.DagsterInstance, lane: Lane) -> set[str]:
    """Partitions a check of days failed on their latest materialization (Dagster's per-partition check status, so
    a partition committed again since counts as unchecked until its check runs)."""
    keys = [
        key
        for checks in lane.source.checks
        for key in checks.check_keys
        if key.asset_key in lane.asset_keys and checks.get_spec_for_check_key(key).partitions_def is not None
    ]
    infos = instance.event_log_storage.get_asset_check_partition_info(keys) if keys else []
    return {i.partition_key for i in infos if i.partition_key and i.latest_execution_status == FAILED and i.is_current}


def survey(
    instance: dg.DagsterInstance, dsn: str, lane: Lane, gaps: GapSettings, now: datetime, time_of_day: time
) -> Survey:
    keys = window_keys(lane, gaps, now, time_of_day)
    seen = Survey(keys)
    if not keys:
        return seen
    assets = [k.to_user_string() for k in lane.asset_keys]
    commits = latest_commits(dsn, assets)
    busy: set[str] = set()
    for run in instance.get_runs(dg.RunsFilter(tags={API_TAG: lane.source.name}, statuses=list(IN_FLIGHT))):
        if run.tags.get(LANE_TAG, lane.name) != lane.name:
            continue  # another lane of the source: other partitions
        busy.update(range_keys(run))
        if run.tags.get(AUTOMATION_TAG) == GAPS:
            seen.in_flight_runs += 1
    for run in instance.get_runs(dg.RunsFilter(tags={AUTOMATION_TAG: GAPS, LANE_TAG: lane.name}), limit=500):
        if run.status not in IN_FLIGHT:
            for key in range_keys(run):
                seen.attempts[key] = seen.attempts.get(key, 0) + 1
    held = {k: [commits[a][k] for a in assets if k in commits[a]] for k in keys if k not in busy}
    complete = {k: c for k, c in held.items() if len(c) == len(assets)}
    wanted = lane.source.members
    members = short(dsn, assets, list(complete), wanted) if wanted is not None else Short()
    suspects = set(suspect_partitions(instance, lane, complete, members))
    # Dagster's view (FAILED, IN_PROGRESS: runs launched from the UI carry no API tag) for what is not complete;
    # asking only about those keeps a tick over years of complete history cheap.
    ask = [k for k in held if k not in complete or k in suspects]
    statuses = [instance.get_status_by_partition(a, ask, lane.partitions) or {} for a in lane.asset_keys] if ask else []
    in_progress, failed = dg.AssetPartitionStatus.IN_PROGRESS, dg.AssetPartitionStatus.FAILED
    seen.busy = len(keys) - len(held)
    for key in ask:
        if any(s.get(key) == in_progress for s in statuses):
            seen.busy += 1
            suspects.discard(key)
            continue
        seen.gaps.append(key)
        if key in members.lacking or (key in members.unsettled and key in suspects):
            seen.short_members += 1
        elif key in suspects:
            seen.suspect += 1
        elif any(s.get(key) == failed for s in statuses):
            seen.failed += 1
    seen.complete = len(complete) - sum(1 for k in ask if k in complete)  # suspects are not complete
    return seen


def suspect_partitions(
    instance: dg.DagsterInstance, lane: Lane, held: Mapping[str, list[Commit]], members: Short
) -> list[str]:
    """Committed partitions to fetch again: lacking a configured member (always: the run fetches just that
    member); zero rows where the source expects rows, named by a failed check after their commit, or holding a
    member's rows unsettled — those once each: what a gap run committed stays, even if it is still suspect."""
    rows_expected = lane.source.source.automation.rows_expected
    by_checks = failed_by_checks(instance, lane)
    lacking = [key for key in held if key in members.lacking]
    maybe = {
        key: commits
        for key, commits in held.items()
        if key not in members.lacking
        and (
            (sum(c.rows for c in commits) == 0 and rows_expected(day_of(key)))
            or key in by_checks
            or key in members.unsettled
        )
    }
    if not maybe:
        return lacking
    run_ids = sorted({c.run_id for commits in maybe.values() for c in commits})
    by_gaps = {
        r.run_id for r in instance.get_runs(dg.RunsFilter(run_ids=run_ids)) if r.tags.get(AUTOMATION_TAG) == GAPS
    }
    return lacking + [k for k, commits in maybe.items() if not any(c.run_id in by_gaps for c in commits)]


@dataclass(frozen=True)
class Plan:
    ranges: list[tuple[str, str]]  # to request now, oldest first
    waiting: int  # gap ranges left for later ticks
    message: str


def plan(seen: Survey, gaps: GapSettings) -> Plan:
    """Contiguous gaps as ranges of at most `run_days`, as many as the caps allow this tick."""
    index = {k: i for i, k in enumerate(seen.keys)}
    chunks: list[list[str]] = []
    for key in seen.gaps:
        last = chunks[-1] if chunks else None
        if last is not None and index[key] == index[last[-1]] + 1 and len(last) < gaps.run_days:
            last.append(key)
        else:
            chunks.append([key])
    room = max(0, min(gaps.per_tick, gaps.in_flight - seen.in_flight_runs))
    ranges = [(c[0], c[-1]) for c in chunks[:room]]
    waiting = len(chunks) - len(ranges)
    return Plan(ranges, waiting, describe(seen, len(ranges), waiting))


def describe(seen: Survey, requested: int, waiting: int) -> str:
    """`1,204 partitions complete, 3 gaps: 2024-03-04..2024-03-09, 2024-05-01; 2 requested, 1 waiting`."""
    if not seen.keys:
        return "no complete partition in the history window yet"
    spans = compact_ranges(seen.gaps)
    shown = format_ranges(spans[:SHOWN_RANGES]) + (f", … ({len(spans) - SHOWN_RANGES} more)" if len(spans) > 6 else "")
    text = f"{seen.complete:,} of {len(seen.keys):,} partitions complete"
    text += f", {len(spans):,} gap{'s' if len(spans) != 1 else ''}: {shown}" if spans else ", no gaps"
    kinds = [
        f"{n:,} {what}"
        for n, what in (
            (seen.failed, "failed"),
            (seen.suspect, "suspect"),
            (seen.short_members, "lacking configured members"),
        )
        if n
    ]
    if kinds:
        text += f" ({', '.join(kinds)})"
    if seen.busy:
        text += f"; {seen.busy:,} partition{'s' if seen.busy != 1 else ''} in flight"
    if spans:
        text += f"; {requested} requested, {waiting} waiting"
        if waiting and seen.in_flight_runs:
            text += f" ({seen.in_flight_runs} gap runs in flight)"
    return text
