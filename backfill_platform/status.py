"""`backfill-platform status`: per asset, over a range of days, which partitions the ledger holds, which are
missing and which Dagster saw fail, with rows, the last commit and the status of its run.

"Materialized" is a commit in the ledger. "Failed" is not in the ledger while Dagster's instance reports the partition
FAILED. "Missing" is neither. Without an instance no failure is counted and run status is "unknown".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.ledger import UNPARTITIONED
from backfill_platform.io_managers.members import short
from backfill_platform.settings import PLATFORM_SCHEMA
from backfill_platform.sources.contract import LoadedSource

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
UNKNOWN = "unknown"

# The latest commit of each partition of each asset (a partition is committed again by each lineage that runs it).
LATEST = sql.SQL(
    "SELECT DISTINCT ON (asset, partition) asset, partition, run_id, rows, committed_at FROM {schema}.ledger "
    "WHERE asset = ANY(%(assets)s) ORDER BY asset, partition, committed_at DESC"
).format(schema=sql.Identifier(PLATFORM_SCHEMA))

Ranges = list[tuple[str, str]]


def parse_day(flag: str, text: str) -> date:
    """Exactly YYYY-MM-DD (not `20240301`, not `2024-W10-1`, which date.fromisoformat also takes)."""
    try:
        if DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigurationError(f"{flag} {text!r} is not a date; write YYYY-MM-DD")


def parse_range(first: str | None, last: str | None) -> tuple[date | None, date | None]:
    """--from and --to as days (None: the source's own bound); one line for a bad or inverted range."""
    lo = None if first is None else parse_day("--from", first)
    hi = None if last is None else parse_day("--to", last)
    if lo is not None and hi is not None and lo > hi:
        raise ConfigurationError(f"the range is inverted: --from {first} is after --to {last}; swap them")
    return lo, hi


def compact_ranges(days: Iterable[str]) -> Ranges:
    """Days (YYYY-MM-DD, any order, repeats allowed) as runs of consecutive days: [(first, last), …]."""
    runs: list[list[date]] = []
    for day in sorted({date.fromisoformat(d) for d in days}):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a.isoformat(), b.isoformat()) for a, b in runs]


def format_ranges(ranges: Ranges) -> str:
    """`2024-03-04..2024-03-09, 2024-05-01`."""
    return ", ".join(a if a == b else f"{a}..{b}" for a, b in ranges)


def declared_order(source: LoadedSource) -> list[dg.AssetKey]:
    order = {table.key: n for n, table in enumerate(source.source.tables)}
    return sorted(source.asset_keys, key=lambda k: (order.get(k, len(order)), k.to_user_string()))


def select(sources: Sequence[LoadedSource], target: str | None) -> list[tuple[LoadedSource, dg.AssetKey]]:
    """Every asset of every source, of the source called `target`, or the one asset `target` names; a source's
    assets in the order it declares its tables (a parent before its children)."""
    everything = [(s, key) for s in sources for key in declared_order(s)]
    if target is None:
        return everything
    chosen = [(s, key) for s, key in everything if target in (s.name, key.to_user_string())]
    if not chosen:
        raise ConfigurationError(
            f"unknown source or asset {target!r}; choose a source ({', '.join(s.name for s in sources)}) "
            f"or an asset ({', '.join(key.to_user_string() for _, key in everything)})"
        )
    return chosen


def partition_keys(source: LoadedSource, first: date | None, last: date | None) -> list[str]:
    """The source's partitions inside [first, last]; an open bound is the source's first day or latest complete
    partition (the partitions definition's last key)."""
    keys = source.partitions.get_partition_keys()
    lo = first.isoformat() if first else ""
    hi = last.isoformat() if last else "9999-12-31"
    return [k for k in keys if lo <= k <= hi]


@dataclass(frozen=True)
class Commit:
    run_id: str
    rows: int
    committed_at: datetime


@dataclass(frozen=True)
class AssetStatus:
    asset: str
    source: str
    first: str | None  # the range reported on: the source's partitions inside --from..--to (None: none there)
    last: str | None
    partitions: int
    materialized: Ranges
    missing: Ranges
    failed: Ranges
    materialized_count: int
    missing_count: int
    failed_count: int
    rows: int  # over the latest commit of each materialized partition
    last_commit: datetime | None
    last_run_id: str | None
    last_run_status: str  # the Dagster run's status (SUCCESS, FAILURE, …), or "unknown"
    unpartitioned: bool = False  # a master table, refreshed whole: one slice, whatever the range

    @property
    def complete(self) -> bool:
        return self.missing_count == 0 and self.failed_count == 0

    def to_json(self) -> dict[str, Any]:
        """The JSON object of `status --json`; ranges are [first, last] pairs (a single day is [d, d])."""
        return {
            "asset": self.asset,
            "source": self.source,
            "first": self.first,
            "last": self.last,
            "partitions": self.partitions,
            "materialized": self.materialized_count,
            "missing": self.missing_count,
            "failed": self.failed_count,
            "complete": self.complete,
            "materialized_ranges": [list(r) for r in self.materialized],
            "missing_ranges": [list(r) for r in self.missing],
            "failed_ranges": [list(r) for r in self.failed],
            "rows": self.rows,
            "last_commit": self.last_commit.isoformat() if self.last_commit else None,
            "last_run_id": self.last_run_id,
            "last_run_status": self.last_run_status,
            **({"unpartitioned": True} if self.unpartitioned else {}),
        }

    def lines(self) -> list[str]:
        """The human-readable report of this asset: a headline, its gaps, then rows and the last commit."""
        if self.partitions == 0:
            return [f"{self.asset}: no partitions in the range"]
        if self.unpartitioned:
            out = [f"{self.asset}: unpartitioned, refreshed whole: {'committed' if self.complete else 'missing'}"]
            if self.last_commit is not None:
                out.append(
                    f"  {self.rows:,} rows; last commit {self.last_commit:%Y-%m-%d %H:%M:%S} "
                    f"by run {self.last_run_id} ({self.last_run_status})"
                )
            return out
        done = f" {format_ranges(self.materialized)}" if self.materialized else ""
        verdict = "complete" if self.complete else f"{self.missing_count:,} missing, {self.failed_count:,} failed"
        out = [
            f"{self.asset}: {self.materialized_count:,} partitions{done} of {self.partitions:,} "
            f"in {self.first}..{self.last}: {verdict}"
        ]
        if self.missing:
            out.append(f"  missing {format_ranges(self.missing)}")
        if self.failed:
            out.append(f"  failed  {format_ranges(self.failed)}")
        if self.last_commit is None:
            out.append("  nothing committed yet")
        else:
            out.append(
                f"  {self.rows:,} rows; last commit {self.last_commit:%Y-%m-%d %H:%M:%S} "
                f"by run {self.last_run_id} ({self.last_run_status})"
            )
        return out


def latest_commits(dsn: str, assets: Sequence[str]) -> dict[str, dict[str, Commit]]:
    """Per asset, per partition: the ledger's latest commit."""
    out: dict[str, dict[str, Commit]] = {a: {} for a in assets}
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{PLATFORM_SCHEMA}.ledger",)).fetchone() == (None,):
            return out
        for asset, partition, run_id, rows, at in conn.execute(LATEST, {"assets": list(assets)}):
            out[asset][partition] = Commit(run_id, rows, at)
    return out


def failed_partitions(
    instance: dg.DagsterInstance | None, source: LoadedSource, key: dg.AssetKey, candidates: Sequence[str]
) -> set[str]:
    """The partitions of `candidates` Dagster's instance reports FAILED (none without an instance)."""
    if instance is None or not candidates:
        return set()
    partitions_def = source.partitions_of(key)
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return set()
    statuses = instance.get_status_by_partition(key, candidates, partitions_def) or {}
    return {p for p, s in statuses.items() if s == dg.AssetPartitionStatus.FAILED}


def run_status(instance: dg.DagsterInstance | None, run_id: str | None) -> str:
    run = instance.get_run_by_id(run_id) if instance is not None and run_id else None
    return run.status.value if run is not None else UNKNOWN


def report(
    dsn: str,
    sources: Sequence[LoadedSource],
    target: str | None = None,
    first: date | None = None,
    last: date | None = None,
    instance: dg.DagsterInstance | None = None,
) -> list[AssetStatus]:
    """The status of every selected asset over [first, last] (open bounds: each source's own)."""
    chosen = select(sources, target)
    keys_of = {s.name: partition_keys(s, first, last) for s in {s.name: s for s, _ in chosen}.values()}
    if target is not None:  # a source or asset asked for by name: a range outside its partitions is a mistake
        source = chosen[0][0]
        every = partition_keys(source, None, None)
        if not every:
            raise ConfigurationError(f"{source.name} has no complete partition yet (it starts {source.config.start})")
        if not keys_of[source.name]:
            flags = " ".join(f"{flag} {day}" for flag, day in (("--from", first), ("--to", last)) if day)
            raise ConfigurationError(
                f"{source.name} has no partition for {flags}; its partitions are {every[0]}..{every[-1]}"
            )
    commits = latest_commits(dsn, [key.to_user_string() for _, key in chosen])
    out = []
    for source, key in chosen:
        asset, keys = key.to_user_string(), keys_of[source.name]
        own = source.partitions_of(key)
        if own is None:  # a master table: one slice (the ledger's __all__)
            keys = [UNPARTITIONED]
        elif own != source.partitions:  # its partitions start later (Racing's racecards): only its own days
            keys = [k for k in keys if own.has_partition_key(k)]
        held = {k: commits[asset][k] for k in keys if k in commits[asset]}
        if held:
            held = _holding_every_member(dsn, source, key, held)
        absent = [k for k in keys if k not in held]
        failed = failed_partitions(instance, source, key, absent)
        missing = [k for k in absent if k not in failed]
        newest = max(held.values(), key=lambda c: c.committed_at, default=None)
        out.append(
            AssetStatus(
                asset=asset,
                source=source.name,
                first=keys[0] if keys and own is not None else None,
                last=keys[-1] if keys and own is not None else None,
                partitions=len(keys),
                materialized=compact_ranges(held) if own is not None else [],
                missing=compact_ranges(missing) if own is not None else [],
                failed=compact_ranges(failed) if own is not None else [],
                materialized_count=len(held),
                missing_count=len(missing),
                failed_count=len(failed),
                rows=sum(c.rows for c in held.values()),
                last_commit=newest.committed_at if newest else None,
                last_run_id=newest.run_id if newest else None,
                last_run_status=run_status(instance, newest.run_id if newest else None),
                unpartitioned=own is None,
            )
        )
    return out


def _holding_every_member(dsn: str, source: LoadedSource, key: dg.AssetKey, held: dict[str, Commit]) -> dict:
    """For a source with members (wallets, symbols): only partitions where every configured member is committed
    and settled count as materialized; a member added since, or a row not yet final, leaves the partition missing
    (the same answer the gap sensor acts on)."""
    if source.members is None:
        return held
    due = short(dsn, [key.to_user_string()], list(held), source.members)
    return {k: c for k, c in held.items() if k not in due.lacking and k not in due.unsettled}


def render(statuses: Sequence[AssetStatus]) -> str:
    return "\n".join(line for s in statuses for line in s.lines())


@contextmanager
def open_instance() -> Iterator[tuple[dg.DagsterInstance | None, str | None]]:
    """Dagster's instance — DAGSTER_HOME's when it is set, else the platform's own (as `backfill` uses) — or None
    and why it could not be opened."""
    from backfill_platform.instance import dagster_home

    instance, reason = None, ""
    try:
        if os.environ.get("DAGSTER_HOME"):
            instance = dg.DagsterInstance.get()
        else:
            instance = dg.DagsterInstance.from_config(str(dagster_home()))
    except Exception as exc:  # whatever the reason: report without failures rather than not at all
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if instance is None:
        yield None, f"no Dagster instance ({reason}); failed partitions are not counted and run status is unknown"
        return
    with instance:
        yield instance, None
