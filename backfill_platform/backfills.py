"""Asset backfills as the UI launches them: submit one, make sure a daemon runs it, follow it, cancel it.

`backfill-platform backfill` creates the same `PartitionBackfill` the UI's *Materialize* → range creates, so it
shows in the UI's Backfills tab, runs through the run queue (concurrency limits), and its runs are retried by
Dagster (`run_retries`), each retry resuming from the ledger (the backfill id is the lineage).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import psycopg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.selector import PartitionRangeSelector, PartitionsByAssetSelector, PartitionsSelector
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id

from backfill_platform import settings
from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.ledger import UNPARTITIONED
from backfill_platform.processes import die_with_parent, stop_group
from backfill_platform.summary import failure_line

FINISHED = {
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}
IN_FLIGHT = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
}
DAEMON_FRESH_S = 45  # a backfill daemon heartbeat (every 30 s) younger than this means a daemon serves the instance


def submit(
    instance: dg.DagsterInstance,
    asset_graph: BaseAssetGraph,
    asset_keys: Sequence[dg.AssetKey],
    first: str,
    last: str,
    tags: Mapping[str, str],
    title: str,
) -> str:
    """Add an asset backfill of `first`..`last` for `asset_keys`; the daemon launches its runs."""
    selectors = [s for s in (_selector(asset_graph, key, first, last) for key in asset_keys) if s is not None]
    if not selectors:
        names = ", ".join(k.to_user_string() for k in asset_keys)
        raise ConfigurationError(f"{names} {'has' if len(asset_keys) == 1 else 'have'} no partition in {first}..{last}")
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id=make_new_backfill_id(),
        asset_graph=asset_graph,
        backfill_timestamp=time.time(),
        tags=dict(tags),
        dynamic_partitions_store=instance,
        partitions_by_assets=selectors,
        title=title,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def earlier_attempt(
    instance: dg.DagsterInstance, tags: Mapping[str, str], asset_keys: Sequence[dg.AssetKey]
) -> PartitionBackfill | None:
    """The latest backfill with these tags (source and range) and this selection that did not complete: a re-run of
    the same command continues it instead of fetching again what it committed."""
    candidates = instance.get_backfills(filters=BulkActionsFilter(tags=dict(tags)), limit=20)
    wanted = set(asset_keys)
    for backfill in sorted(candidates, key=lambda b: b.backfill_timestamp, reverse=True):
        if set(backfill.asset_selection or ()) != wanted:
            continue
        return None if backfill.status == BulkActionStatus.COMPLETED_SUCCESS else backfill
    return None


def lineage(backfill: PartitionBackfill) -> str:
    """The ledger lineage a backfill's runs commit under (see io_managers/ledger.py)."""
    return backfill.tags.get(settings.LINEAGE_TAG) or f"backfill:{backfill.backfill_id}"


def cancel(instance: dg.DagsterInstance, backfill_id: str) -> None:
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise LookupError(backfill_id)
    if backfill.status not in FINISHED:
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))


def daemon_running(instance: dg.DagsterInstance) -> bool:
    heartbeat = instance.get_daemon_heartbeats().get("BACKFILL")
    return heartbeat is not None and time.time() - heartbeat.timestamp < DAEMON_FRESH_S


@contextmanager
def daemon(env: Mapping[str, str]) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the platform's workspace for the duration; stopped (with its code server and run
    workers' parent) when the block ends."""
    home = env["DAGSTER_HOME"]
    cmd = [
        sys.executable,
        "-m",
        "backfill_platform.daemon",
        "run",
        "-w",
        str(settings.project_root() / "workspace.yaml"),
    ]
    log = open(os.path.join(home, "daemon.log"), "ab")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        cmd, cwd=home, env=dict(env), stdout=log, stderr=log, start_new_session=True, preexec_fn=die_with_parent
    )
    try:
        yield proc
    finally:
        stop_group(proc)
        log.close()
        # A stopped daemon leaves its last heartbeat behind; the next command must not take it for a live one.
        # (A daemon that still runs, e.g. `backfill-platform dev`'s, writes a new one within its 30 s interval.)
        with dg.DagsterInstance.get() as instance:
            instance.wipe_daemon_heartbeats()


@dataclass
class Progress:
    """Where a backfill stands: partitions (asset × day) done, failed and in flight, and what it cost."""

    backfill_id: str = ""
    status: str = "REQUESTED"
    total: int = 0
    done: int = 0
    # partitions this backfill found committed by earlier runs and had nothing to fetch for (a member table's days
    # that hold every wallet or symbol already): counted once the backfill has succeeded, per asset
    held: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    in_flight: int = 0
    rows: int = 0
    api_calls: int = 0
    http_429: int = 0
    runs: int = 0
    failure: str | None = None
    per_asset: dict[str, dict[str, dict]] = field(default_factory=dict)
    # per "asset check" label: the worst of its evaluations, and on which days (a check of days)
    checks: dict[str, CheckTally] = field(default_factory=dict)
    seconds: float = 0.0  # from submission to finish, as followed

    def asset_figures(self) -> list[tuple[str, int, int, int | None]]:
        """Per asset: partitions, rows and API calls (None for an asset derived in SQL), from its partitions' own
        figures."""
        out = []
        for asset in dict.fromkeys([*self.per_asset, *self.held]):
            partitions = self.per_asset.get(asset, {})
            held = self.held.get(asset, 0)
            calls = [int(p["api_calls"]) for p in partitions.values() if "api_calls" in p]
            rows = sum(int(p["rows"]) for p in partitions.values())
            out.append((asset, len(partitions) + held, rows, sum(calls) if calls else (0 if held else None)))
        return out

    @property
    def finished(self) -> bool:
        return self.status in {s.value for s in FINISHED}

    @property
    def succeeded(self) -> bool:
        held = sum(self.held.values())
        return self.finished and self.failed == 0 and self.done + held == self.total and self.status != "CANCELED"

    def report(self, backfill_id: str) -> list[str]:
        """The end of a backfill: per asset its rows, partitions and calls (its partitions' own figures), checks,
        and the innermost cause of a failure."""
        lines = [f"backfill {backfill_id}: {'SUCCESS' if self.succeeded else self.status} ({self.runs} runs)"]
        for asset, partitions, rows, calls in self.asset_figures():
            calls_text = f", {calls:,} API calls" if calls is not None else ""
            held = f" ({self.held[asset]} already held)" if self.held.get(asset) else ""
            lines.append(f"  {asset}: {rows:,} rows in {partitions} partitions{held}{calls_text}")
        for label, outcome in self.checks.items():
            lines.append(f"  check {label}: {outcome}")
        if self.failure and not self.succeeded:
            lines.append(f"  error: {self.failure}")
        return lines

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = f", ETA {(self.total - self.done) / rate:.0f} s" if rate and not self.finished else ""
        held = sum(self.held.values())
        held_text = f" ({held} already held)" if held else ""
        return (
            f"{self.done + held}/{self.total} partitions done{held_text}, {self.failed} failed, "
            f"{self.in_flight} in flight · "
            f"{self.rows:,} rows · {self.api_calls:,} API calls, {self.http_429} 429s · {elapsed:.0f} s elapsed{eta}"
        )


def range_keys(run: dg.DagsterRun) -> list[str]:
    """The daily keys a run covers (its range tags, or its one partition)."""
    start, end = run.tags.get(settings.RANGE_START_TAG), run.tags.get(settings.RANGE_END_TAG)
    if start and end:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    key = run.tags.get("dagster/partition")
    return [key] if key else []


def _selector(asset_graph: BaseAssetGraph, key: dg.AssetKey, first: str, last: str) -> PartitionsByAssetSelector | None:
    """The asset's own part of first..last: an unpartitioned asset whole, one whose partitions start later (Racing's
    racecards) from its first key, none when its partitions start after `last`."""
    own = own_keys(asset_graph.get(key).partitions_def, first, last)
    if own is None:
        return PartitionsByAssetSelector(asset_key=key, partitions=None)
    if not own:
        return None
    return PartitionsByAssetSelector(
        asset_key=key, partitions=PartitionsSelector(ranges=[PartitionRangeSelector(start=own[0], end=own[-1])])
    )


def own_keys(partitions_def: dg.PartitionsDefinition | None, first: str, last: str) -> list[str] | None:
    """An asset's partition keys inside first..last (None: the asset is unpartitioned)."""
    if partitions_def is None:
        return None
    return [k for k in partitions_def.get_partition_keys() if first <= k <= last]


def targeted_partitions(backfill: PartitionBackfill) -> dict[str, list[str]]:
    """What a backfill targets, per asset, however it was launched (the UI, GraphQL, this CLI): any subset, not only
    one range."""
    data = backfill.asset_backfill_data
    if data is None:
        return {}
    subset = data.target_subset
    out = {
        k.to_user_string(): sorted(p.get_partition_keys()) for k, p in subset.partitions_subsets_by_asset_key.items()
    }
    out.update({k.to_user_string(): [UNPARTITIONED] for k in subset.non_partitioned_asset_keys})
    return out


def progress(instance: dg.DagsterInstance, dsn: str, backfill_id: str, own: Mapping[str, Sequence[str]]) -> Progress:
    backfill = instance.get_backfill(backfill_id)
    names = list(own)
    keys = sorted({k for ks in own.values() for k in ks})
    out = Progress(backfill_id, backfill.status.value if backfill else "UNKNOWN", sum(len(v) for v in own.values()))
    with psycopg.connect(dsn) as conn:
        has_ledger = conn.execute("SELECT to_regclass('backfill_platform.ledger')").fetchone() != (None,)
        committed = (
            conn.execute(
                "SELECT asset, partition, rows FROM backfill_platform.ledger WHERE lineage = %s AND asset = ANY(%s) "
                "AND partition = ANY(%s)",
                (lineage(backfill) if backfill else f"backfill:{backfill_id}", names, list(keys)),
            ).fetchall()
            if has_ledger
            else []
        )
    member = {a: set(ks) for a, ks in own.items()}  # long ranges: thousands of partitions per asset, each poll
    done = {(a, p) for a, p, _ in committed if p in member.get(a, ())}
    out.done, out.rows = len(done), sum(r for a, p, r in committed if (a, p) in done)
    if has_ledger and backfill is not None and backfill.status == BulkActionStatus.COMPLETED_SUCCESS:
        out.held = _held(dsn, own, done)
    runs = instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    out.runs = len(runs)
    flying: set[str] = set()
    failed_keys: set[str] = set()
    for run in runs:
        covered = range_keys(run)
        if run.status in IN_FLIGHT:
            flying.update(covered)
        elif run.status == DagsterRunStatus.FAILURE:
            failed_keys.update(covered)
            out.failure = out.failure or _failure(instance, run.run_id)
        _add_costs(instance, run.run_id, out)
    out.in_flight = sum(1 for k in flying for a in names if k in member[a] and (a, k) not in done)
    out.failed = (
        sum(1 for k in failed_keys - flying for a in names if k in member[a] and (a, k) not in done)
        if out.finished
        else 0
    )
    return out


def _held(dsn: str, own: Mapping[str, Sequence[str]], done: set[tuple[str, str]]) -> dict[str, int]:
    """Per asset, the targeted partitions a succeeded backfill did not commit itself but any earlier run did: the
    IO manager skips a member table's day that holds every member already, so there was nothing to fetch."""
    missing = [(a, k) for a, ks in own.items() for k in ks if (a, k) not in done]
    if not missing:
        return {}
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT DISTINCT asset, partition FROM backfill_platform.ledger "
            "WHERE (asset, partition) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([a for a, _ in missing], [k for _, k in missing]),
        ).fetchall()
    out: dict[str, int] = {}
    for asset, _ in found:
        out[asset] = out.get(asset, 0) + 1
    return out


_OUTCOMES = ("passed", "warning", "FAILED")


@dataclass
class CheckTally:
    """One asset check over a backfill: passed, warning (a failed WARN check) or FAILED, the worst of its
    evaluations; for a check of days, which of the days it checked were not passed."""

    outcome: str = "passed"
    days: set[str] = field(default_factory=set)
    bad_days: set[str] = field(default_factory=set)

    def add(self, evaluation: Any) -> None:
        if evaluation.passed:
            outcome = "passed"
        else:
            warn = getattr(evaluation, "severity", None) == dg.AssetCheckSeverity.WARN
            outcome = "warning" if warn else "FAILED"
        self.outcome = max(self.outcome, outcome, key=_OUTCOMES.index)
        partition = getattr(evaluation, "partition", None)
        if partition is not None:
            self.days.add(partition)
            if not evaluation.passed:
                self.bad_days.add(partition)

    def __str__(self) -> str:
        if not self.bad_days:
            return self.outcome if not self.days else f"{self.outcome} ({len(self.days)} days)"
        shown = sorted(self.bad_days)
        listed = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
        return f"{self.outcome} on {len(shown)} of {len(self.days)} days ({listed})"


def _add_check(checks: dict[str, CheckTally], evaluation: Any) -> None:
    """One line per asset check: a check evaluated per partition, or on several runs, shows its worst outcome."""
    asset = getattr(evaluation, "asset_key", None)
    label = f"{asset.to_user_string()} {evaluation.check_name}" if asset is not None else evaluation.check_name
    checks.setdefault(label, CheckTally()).add(evaluation)


def _add_costs(instance: dg.DagsterInstance, run_id: str, out: Progress) -> None:
    """API calls and 429s from each partition's own figures (reported once at commit, again on success)."""
    records = instance.get_records_for_run(
        run_id, of_type={DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            _add_check(out.checks, data)
            continue
        m = event.step_materialization_data.materialization
        if m.partition is None or "rows" not in m.metadata:
            continue
        seen = out.per_asset.setdefault(m.asset_key.to_user_string(), {})
        if m.partition in seen:
            continue
        values: dict[str, Any] = {k: v.value for k, v in m.metadata.items()}
        seen[m.partition] = values
        out.api_calls += int(values.get("api_calls", 0))
        out.http_429 += int(values.get("api_http_429", 0))
    windows = {p.get("window"): int(p.get("window_429s", 0)) for a in out.per_asset.values() for p in a.values()}
    out.http_429 += sum(v for k, v in windows.items() if k)


def _failure(instance: dg.DagsterInstance, run_id: str) -> str | None:
    records = instance.get_records_for_run(
        run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
    ).records
    return failure_line(r.event_log_entry.dagster_event for r in records)
