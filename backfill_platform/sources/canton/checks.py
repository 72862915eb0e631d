"""Scan asset checks: unique ids, no orphan events, no NULL migration ids, per-migration ranges and counts."""

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url, fetch_one
from backfill_platform.sources.canton.tables import EVENTS, UPDATES


@dg.asset_check(asset=UPDATES.key, description="No update id appears twice and no migration id is NULL.")
def updates_unique_and_migrated() -> dg.AssetCheckResult:
    total, distinct, null_migrations = fetch_one(
        sql.SQL(
            "SELECT count(*), count(DISTINCT update_id), count(*) FILTER (WHERE migration_id IS NULL) FROM {}"
        ).format(UPDATES.ident)
    )
    return dg.AssetCheckResult(
        passed=total == distinct and null_migrations == 0,
        metadata={"updates": total, "duplicates": total - distinct, "null_migration_ids": null_migrations},
    )


@dg.asset_check(asset=EVENTS.key, description="No event id twice; every event's update exists (no orphans).")
def events_unique_and_anchored() -> dg.AssetCheckResult:
    total, distinct = fetch_one(sql.SQL("SELECT count(*), count(DISTINCT event_id) FROM {}").format(EVENTS.ident))
    (orphans,) = fetch_one(
        sql.SQL(
            "SELECT count(*) FROM {e} e WHERE NOT EXISTS (SELECT 1 FROM {u} u WHERE u.update_id = e.update_id)"
        ).format(e=EVENTS.ident, u=UPDATES.ident)
    )
    return dg.AssetCheckResult(
        passed=total == distinct and orphans == 0,
        metadata={"events": total, "duplicates": total - distinct, "orphan_events": orphans},
    )


@dg.asset_check(asset=UPDATES.key, description="Per migration: record-time range and count (overlaps are expected).")
def updates_per_migration() -> dg.AssetCheckResult:
    with psycopg.connect(database_url()) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT migration_id, count(*), min(record_time), max(record_time) FROM {} GROUP BY 1 ORDER BY 1"
            ).format(UPDATES.ident)
        ).fetchall()
    summary = {str(m): {"updates": n, "first": str(lo), "last": str(hi)} for m, n, lo, hi in rows}
    return dg.AssetCheckResult(
        passed=all(n > 0 and lo <= hi for _, n, lo, hi in rows), metadata={"migrations": dg.MetadataValue.json(summary)}
    )


CHECKS = (updates_unique_and_migrated, events_unique_and_anchored, updates_per_migration)
