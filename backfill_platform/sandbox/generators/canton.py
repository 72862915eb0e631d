"""Splice Scan ledger history: updates with nested event trees, over migrations whose time ranges overlap.

Pages are served at hundreds of thousands of events a second, so each (migration, day) is rendered to JSON
bytes once and cached; a page is a join of pre-rendered items.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import orjson

from backfill_platform.sandbox.generators import daily_count, day_start_utc, hex_id, iso_z, rng_for

SYNCHRONIZER = "global-domain::1220b1431ef217342db44d516bb9befde802be7d8899637d290895fa58880f19accc"
UPDATES_PER_DAY = 1000
# 84M rows over ~880 days of history at ~4.5 rows (1 update + events) per update.
FULL_SCALE = 84_000_000 / (880 * 4.5 * UPDATES_PER_DAY)
PACKAGE = "3ca1343ab26b453d38c8adb70dca5f1ead8440c42b59b68f070786955cbf9ec1"
TEMPLATES = (
    f"{PACKAGE}:Splice.Amulet:Amulet",
    f"{PACKAGE}:Splice.Amulet:LockedAmulet",
    f"{PACKAGE}:Splice.Round:OpenMiningRound",
    f"{PACKAGE}:Splice.AmuletRules:AmuletRules",
    f"{PACKAGE}:Splice.ValidatorLicense:ValidatorLicense",
)
CHOICES = ("AmuletRules_Transfer", "AmuletRules_BuyMemberTraffic", "Amulet_Expire", "ValidatorLicense_RecordActivity")
PARTIES = tuple(f"party-{i}::1220{hex_id(32, 'party', i)[:60]}" for i in range(40))


@dataclass(frozen=True)
class Migration:
    """One migration id's record-time range; consecutive migrations overlap (a hard domain migration)."""

    migration_id: int
    start: datetime
    end: datetime | None  # None: still live


MIGRATIONS = (
    Migration(0, datetime(2024, 6, 24, tzinfo=UTC), datetime(2024, 12, 10, 12, tzinfo=UTC)),
    Migration(1, datetime(2024, 12, 10, tzinfo=UTC), datetime(2025, 6, 25, 12, tzinfo=UTC)),
    Migration(2, datetime(2025, 6, 25, tzinfo=UTC), None),
)
GENESIS = MIGRATIONS[0].start


def migration(migration_id: int) -> Migration | None:
    return next((m for m in MIGRATIONS if m.migration_id == migration_id), None)


def _events(seed: int, update_id: str, rng, created_at: str) -> tuple[dict[str, dict], list[str]]:
    """An event tree: an exercise with created children, or a lone create; ids are `<update_id>:<index>`."""
    events: dict[str, dict] = {}
    n_children = rng.choice((0, 1, 2, 2, 3, 4, 5))
    if n_children == 0:
        eid = f"{update_id}:0"
        events[eid] = _created(seed, eid, rng, created_at)
        return events, [eid]
    root = f"{update_id}:0"
    children = [f"{update_id}:{i}" for i in range(1, n_children + 1)]
    events[root] = {
        "event_type": "exercised_event",
        "event_id": root,
        "contract_id": "00" + hex_id(33, seed, root, "cid"),
        "template_id": TEMPLATES[3],
        "package_name": "splice-amulet",
        "choice": rng.choice(CHOICES),
        "choice_argument": {"transfer": {"sender": rng.choice(PARTIES), "amount": str(rng.randrange(1, 10**6))}},
        "child_event_ids": children,
        "exercise_result": {"round": {"number": str(rng.randrange(1, 90_000))}},
        "consuming": rng.random() < 0.5,
        "acting_parties": [rng.choice(PARTIES)],
    }
    for child in children:
        events[child] = _created(seed, child, rng, created_at)
    return dict(sorted(events.items())), [root]


def _created(seed: int, eid: str, rng, created_at: str) -> dict:
    return {
        "event_type": "created_event",
        "event_id": eid,
        "contract_id": "00" + hex_id(33, seed, eid, "cid"),
        "template_id": rng.choice(TEMPLATES),
        "package_name": "splice-amulet",
        "create_arguments": {
            "owner": rng.choice(PARTIES),
            "amount": {
                "initialAmount": f"{rng.random() * 1000:.10f}",
                "createdAt": {"number": str(rng.randrange(90_000))},
            },
        },
        "created_at": created_at,
        "signatories": [rng.choice(PARTIES)],
        "observers": [],
    }


@dataclass(frozen=True)
class DayUpdates:
    """One migration's updates in one UTC day, ascending by record time, with their rendered JSON."""

    record_times: tuple[str, ...]
    items: tuple[dict, ...]
    rendered: tuple[bytes, ...]


@lru_cache(maxsize=1024)
def day_updates(seed: int, migration_id: int, day: date, scale: float = 1.0) -> DayUpdates:
    m = migration(migration_id)
    start, end = day_start_utc(day), day_start_utc(day) + timedelta(days=1)
    if m is None:
        return DayUpdates((), (), ())
    lo, hi = max(start, m.start), min(end, m.end) if m.end else end
    if lo >= hi:
        return DayUpdates((), (), ())
    rng = rng_for(seed, "canton", migration_id, day)
    count = max(1, int(daily_count(UPDATES_PER_DAY, scale, rng) * (hi - lo) / (end - start)))
    span_us = int((hi - lo).total_seconds() * 1_000_000)
    offsets = sorted(set(rng.randrange(span_us) for _ in range(count)))
    items: list[dict] = []
    for i, off in enumerate(offsets):
        record_time = iso_z(lo + timedelta(microseconds=off))
        update_id = "1220" + hex_id(32, seed, "update", migration_id, day, i)
        if rng.random() < 0.02:
            items.append(_reassignment(seed, update_id, migration_id, record_time, rng, day, i))
            continue
        events, roots = _events(seed, update_id, rng, record_time)
        items.append(
            {
                "update_id": update_id,
                "migration_id": migration_id,
                "workflow_id": "" if rng.random() < 0.7 else f"wf-{rng.randrange(10**6)}",
                "record_time": record_time,
                "synchronizer_id": SYNCHRONIZER,
                "effective_at": record_time,
                "root_event_ids": roots,
                "events_by_id": events,
            }
        )
    return DayUpdates(tuple(i["record_time"] for i in items), tuple(items), tuple(orjson.dumps(i) for i in items))


def _reassignment(seed: int, update_id: str, migration_id: int, record_time: str, rng, day: date, i: int) -> dict:
    eid = f"{update_id}:0"
    return {
        "update_id": update_id,
        "offset": f"{day.toordinal():07d}{i:06d}",
        "record_time": record_time,
        "event": {
            "submitter": rng.choice(PARTIES),
            "source_synchronizer": SYNCHRONIZER,
            "target_synchronizer": SYNCHRONIZER,
            "migration_id": migration_id,
            "unassign_id": hex_id(16, seed, update_id, "unassign"),
            "created_event": _created(seed, eid, rng, record_time),
            "reassignment_counter": rng.randrange(1, 4),
        },
    }


def updates_after(seed: int, scale: float, after: tuple[int, str] | None, limit: int, head: datetime) -> list[bytes]:
    """Rendered updates strictly after (migration_id, record_time), ascending, up to `limit`, none past `head`."""
    out: list[bytes] = []
    head_iso = iso_z(head)
    for m in MIGRATIONS:
        if after is not None and m.migration_id < after[0]:
            continue
        since = after[1] if after is not None and m.migration_id == after[0] else None
        first = datetime.fromisoformat(since).date() if since else m.start.date()
        last = min(head, m.end).date() if m.end else head.date()
        day = max(first, m.start.date())
        while day <= last and len(out) < limit:
            du = day_updates(seed, m.migration_id, day, scale)
            i = bisect.bisect_right(du.record_times, since) if since else 0
            j = bisect.bisect_right(du.record_times, head_iso)
            out.extend(du.rendered[i : min(j, i + limit - len(out))])
            day += timedelta(days=1)
        if len(out) >= limit:
            break
    return out


def updates_before(
    seed: int, scale: float, migration_id: int, before: str, at_or_after: str | None, count: int
) -> list[dict]:
    """Updates of one migration with record time < before (and >= at_or_after), newest first."""
    m = migration(migration_id)
    if m is None:
        return []
    out: list[dict] = []
    day = min(datetime.fromisoformat(before), m.end or datetime.fromisoformat(before)).date()
    floor = max(m.start, datetime.fromisoformat(at_or_after)) if at_or_after else m.start
    while day >= floor.date() and len(out) < count:
        du = day_updates(seed, migration_id, day, scale)
        j = bisect.bisect_left(du.record_times, before)
        lo = bisect.bisect_left(du.record_times, at_or_after) if at_or_after else 0
        for k in range(j - 1, lo - 1, -1):
            out.append({**du.items[k], "offset": du.items[k].get("offset", f"{k:013d}")})
            if len(out) >= count:
                break
        day -= timedelta(days=1)
    return out


def updates_in_window(seed: int, scale: float, start: datetime, end: datetime) -> list[dict]:
    """Ground truth for tests: every update with start <= record_time < end, in stream order."""
    out: list[dict] = []
    lo, hi = iso_z(start), iso_z(end)
    last = (end - timedelta(microseconds=1)).date()
    for m in MIGRATIONS:
        day = start.date()
        while day <= last:
            du = day_updates(seed, m.migration_id, day, scale)
            out.extend(item for item in du.items if lo <= item["record_time"] < hi)
            day += timedelta(days=1)
    return out
