"""Typed iterators over Scan's /v2/updates: one day's updates of one migration, by the exclusive `after` cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from backfill_platform.resources.http import ApiError, ApiSession
from backfill_platform.resources.pagination import after_last_pages
from backfill_platform.sources.canton import settings


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Reassignment(msgspec.Struct):
    """The part of a reassignment's `event` the row needs; the rest stays in the raw payload."""

    migration_id: int
    target_synchronizer: str | None = None


class UpdateHead(msgspec.Struct):
    """An update's top-level fields. Decoding into it skips `events_by_id` without building Python objects."""

    update_id: str
    record_time: str
    migration_id: int | None = None  # transactions carry it here, reassignments inside `event`
    synchronizer_id: str | None = None
    effective_at: str | None = None
    workflow_id: str | None = None
    event: Reassignment | None = None

    @property
    def migration(self) -> int:
        if self.migration_id is not None:
            return self.migration_id
        if self.event is not None:
            return self.event.migration_id
        raise ApiError("canton", settings.UPDATES_ROUTE, f"malformed page: update {self.update_id} has no migration_id")


@dataclass(frozen=True, slots=True)
class ScanUpdate:
    """One update: its head, decoded, and its JSON exactly as the server sent it (stored as `payload`)."""

    head: UpdateHead
    raw: bytes


class _Page(msgspec.Struct):
    transactions: list[msgspec.Raw]


_page_decoder = msgspec.json.Decoder(_Page)
_head_decoder = msgspec.json.Decoder(UpdateHead)


def decode_page(body: bytes) -> list[ScanUpdate]:
    """A /v2/updates page, split into items without parsing their event trees (PostgreSQL parses those once)."""
    return [ScanUpdate(_head_decoder.decode(raw), bytes(raw)) for raw in _page_decoder.decode(body).transactions]


@dataclass(frozen=True)
class Migration:
    migration_id: int
    first: datetime | None  # None: unknown (migration-info not served)
    last: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return (self.first is None or self.first < end) and (self.last is None or self.last >= start)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Status answers meaning "this Scan does not serve migration-info" (an SV-internal endpoint): discover instead.
NOT_SERVED = frozenset({403, 404, 405, 501})
# A cursor past any record time: `after (m, END_OF_TIME)` answers with migration m+1's first update.
END_OF_TIME = "9999-12-31T23:59:59.999999Z"


class CantonClient:
    def __init__(self, session: ApiSession, page_size: int = settings.PAGE_SIZE, migrations: str = "") -> None:
        self.session, self.page_size, self.configured_migrations = session, page_size, migrations
        # migration -> a record time before which it was seen to hold no more updates (learnt while streaming)
        self.ended_before: dict[int, datetime] = {}

    def migrations(self) -> list[Migration]:
        """Each migration's record-time range: from migration-info where served, else found on /v2/updates."""
        if self.configured_migrations:
            return [Migration(int(m), None, None) for m in self.configured_migrations.split(",")]
        found, m = [], 0
        while True:
            try:
                info = self.session.post(settings.MIGRATION_INFO_ROUTE, {"migration_id": m})
            except ApiError as exc:
                if exc.status == 404 and found:
                    return found
                if exc.status in NOT_SERVED and not found:
                    return self.discover()
                raise
            ranges = info.get("record_time_range") or []
            firsts = [_time(r["min"]) for r in ranges if r.get("min")]
            lasts = [_time(r["max"]) for r in ranges if r.get("max")]
            found.append(Migration(m, min(firsts) if firsts else None, max(lasts) if lasts else None))
            m += 1

    def discover(self) -> list[Migration]:
        """Every migration and its first record time from the public /v2/updates alone: one 1-item page each.

        The ascending cursor `(m, end of time)` skips the rest of m and answers with the next migration's first
        update, which names it; an empty page means no further migration. Ends are learnt while streaming days."""
        found: list[Migration] = []
        after: tuple[int, str] | None = None
        while page := self._page(after, 1):
            head = page[0].head
            found.append(Migration(head.migration, _time(head.record_time), None))
            after = (head.migration, END_OF_TIME)
        return found

    def _page(self, after: tuple[int, str] | None, size: int | None = None) -> list[ScanUpdate]:
        body: dict = {"page_size": size or self.page_size, "daml_value_encoding": "compact_json"}
        if after is not None:
            body["after"] = {"after_migration_id": after[0], "after_record_time": after[1]}
        return self.session.post(settings.UPDATES_ROUTE, body, decode=decode_page)

    def streams(self, migrations: list[Migration], start: datetime, end: datetime) -> list[int]:
        """The migrations whose stream may hold updates in [start, end): overlapping, and not seen ended before."""
        return [
            m.migration_id
            for m in migrations
            if m.overlaps(start, end) and start < self.ended_before.get(m.migration_id, END)
        ]

    def day(self, migration: int, start: datetime, end: datetime) -> Iterator[list[ScanUpdate]]:
        """Updates of one migration with start <= record_time < end, ascending, page by page.

        The stream starts just before `start` and ends when the record time passes the window, when the stream moves
        on to another migration, or at the head (a short page). A stream whose very first update is another
        migration's shows that this one holds nothing from `start` on: later days skip it."""
        before_start = iso(start - timedelta(microseconds=1))
        end_iso = iso(end)
        first = True
        for page in after_last_pages(
            self._page, self.page_size, lambda u: (u.head.migration, u.head.record_time), (migration, before_start)
        ):
            if first and page and page[0].head.migration != migration:
                self.ended_before[migration] = min(start, self.ended_before.get(migration, END))
            first = False
            keep = [u for u in page if u.head.migration == migration and u.head.record_time < end_iso]
            if keep:
                yield keep
            if len(keep) < len(page):
                return


END = datetime.max.replace(tzinfo=UTC)
