"""Scan asset checks on the run's UTC days only: unique ids, no NULL migration ids, no orphan events, and per
migration the record-time range and count of those days (so a daily run never scans the whole history)."""

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url, fetch_one
from backfill_platform.sources.canton.tables import EVENTS, UPDATES
from backfill_platform.sources.checks import Findings, daily_check, run_days

DAY = sql.SQL("(record_time AT TIME ZONE 'UTC')::date")


def latest() -> date | None:
    """The day a check launched without partitions looks at: the newest stored."""
    (at,) = fetch_one(sql.SQL("SELECT max(record_time) FROM {}").format(UPDATES.ident))
    return at.astimezone(UTC).date() if at is not None else None


def bounds(days: list[date]) -> dict[str, datetime]:
    """The record-time bounds of the days: [first 00:00 UTC, last + 1 00:00 UTC)."""
    if not days:
        return {"start": datetime.min.replace(tzinfo=UTC), "end": datetime.min.replace(tzinfo=UTC)}
    start = datetime.combine(days[0], time(), UTC)
    return {"start": start, "end": datetime.combine(days[-1], time(), UTC) + timedelta(days=1)}


def query(statement: sql.Composed, params: dict[str, datetime]) -> list[tuple]:
    with psycopg.connect(database_url()) as conn:
        return conn.execute(statement, params).fetchall()


WINDOW = sql.SQL("record_time >= %(start)s AND record_time < %(end)s")


@daily_check(UPDATES.key, "No update id twice and no NULL migration id (in the run's days).", latest)
def updates_unique_and_migrated(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    params = bounds(days)
    rows = query(
        sql.SQL(
            "SELECT {day}, count(*), count(DISTINCT update_id), count(*) FILTER (WHERE migration_id IS NULL) "
            "FROM {t} WHERE {w} GROUP BY 1"
        ).format(day=DAY, t=UPDATES.ident, w=WINDOW),
        params,
    )
    bad = {
        d.isoformat(): f"{n - distinct} duplicates, {nulls} NULL migration ids"
        for d, n, distinct, nulls in rows
        if n != distinct or nulls
    }
    return Findings(bad, {"updates": sum(r[1] for r in rows)})


@daily_check(EVENTS.key, "No event id twice; every event's update exists (in the run's days).", latest)
def events_unique_and_anchored(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    params = bounds(days)
    rows = query(
        sql.SQL(
            "SELECT {day}, count(*), count(DISTINCT event_id), "
            "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {u} u WHERE u.update_id = e.update_id)) "
            "FROM {e} e WHERE {w} GROUP BY 1"
        ).format(day=DAY, u=UPDATES.ident, e=EVENTS.ident, w=WINDOW),
        params,
    )
    bad = {
        d.isoformat(): f"{n - distinct} duplicates, {orphans} orphan events"
        for d, n, distinct, orphans in rows
        if n != distinct or orphans
    }
    return Findings(bad, {"events": sum(r[1] for r in rows), "orphan_events": sum(r[3] for r in rows)})


@dg.asset_check(
    asset=UPDATES.key, description="Per migration, in the run's days: record-time range and count (overlaps expected)."
)
def updates_per_migration(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Of the whole run (a migration spans days), so not a check of days."""
    days = run_days(context, latest)
    params = bounds(days)
    rows = query(
        sql.SQL(
            "SELECT migration_id, count(*), min(record_time), max(record_time) FROM {t} WHERE {w} GROUP BY 1 ORDER BY 1"
        ).format(t=UPDATES.ident, w=WINDOW),
        params,
    )
    summary = {str(m): {"updates": n, "first": str(lo), "last": str(hi)} for m, n, lo, hi in rows}
    bad = {str(m): "empty or inverted range" for m, n, lo, hi in rows if not (n > 0 and lo <= hi)}
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"days_checked": len(days), "migrations": dg.MetadataValue.json(summary)},
    )


CHECKS = (updates_unique_and_migrated, events_unique_and_anchored, updates_per_migration)
