"""The commit ledger: which partitions a run lineage already committed, so a retry skips them.

A lineage is the backfill a run belongs to, else its root run (Dagster's run retries share it). A retried run or a
retried backfill sees its own commits and does not fetch them again; a fresh, unrelated run (a scheduled re-run of
yesterday) has a new lineage and refetches, so late data is seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.settings import LINEAGE_TAG, PLATFORM_SCHEMA

BACKFILL_TAG = "dagster/backfill"
UNPARTITIONED = "__all__"

DDL = sql.SQL("""
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.ledger (
    asset text NOT NULL,
    partition text NOT NULL,
    lineage text NOT NULL,
    run_id text NOT NULL,
    rows bigint NOT NULL,
    bytes bigint NOT NULL,
    seconds double precision NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    members text[],
    unsettled text[],
    PRIMARY KEY (asset, partition, lineage)
);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = {schema_text}
                   AND table_name = 'ledger' AND column_name = 'members') THEN
        ALTER TABLE {schema}.ledger ADD COLUMN members text[], ADD COLUMN unsettled text[];
    END IF;
END $$;
""").format(schema=sql.Identifier(PLATFORM_SCHEMA), schema_text=sql.Literal(PLATFORM_SCHEMA))

# `members`: who the commit holds (NULL: a table without members), kept distinct and sorted (so the gap sensor can
# compare a commit with the configured members as one array). Within a lineage they accumulate, and a member
# written again is unsettled only if this commit says so.
RECORD = sql.SQL("""
INSERT INTO {schema}.ledger AS l (asset, partition, lineage, run_id, rows, bytes, seconds, members, unsettled)
VALUES (%(asset)s, %(partition)s, %(lineage)s, %(run_id)s, %(rows)s, %(bytes)s, %(seconds)s,
        CASE WHEN %(members)s::text[] IS NULL THEN NULL
            ELSE ARRAY(SELECT DISTINCT m FROM unnest(%(members)s::text[]) m ORDER BY m) END,
        %(unsettled)s)
ON CONFLICT (asset, partition, lineage) DO UPDATE SET
    run_id = EXCLUDED.run_id, rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, seconds = EXCLUDED.seconds,
    committed_at = now(),
    members = CASE WHEN EXCLUDED.members IS NULL THEN NULL
        ELSE ARRAY(SELECT DISTINCT m FROM unnest(coalesce(l.members, '{{}}') || EXCLUDED.members) m ORDER BY m) END,
    unsettled = ARRAY(SELECT m FROM unnest(coalesce(l.unsettled, '{{}}')) m WHERE m <> ALL(EXCLUDED.members)
        UNION SELECT unnest(EXCLUDED.unsettled))
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

# Per partition, the members committed and settled in any lineage, or committed at all in `lineage` (a resumed run
# does not refetch what it wrote, settled or not).
HELD = sql.SQL(
    "SELECT partition, array_agg(DISTINCT m) FROM {schema}.ledger, unnest(members) m "
    "WHERE asset = %(asset)s AND partition = ANY(%(partitions)s) AND members IS NOT NULL "
    "AND (lineage = %(lineage)s OR m <> ALL(coalesce(unsettled, '{{}}'))) GROUP BY partition"
).format(schema=sql.Identifier(PLATFORM_SCHEMA))

# Partitions every one of `assets` committed in this lineage (a parent and its children commit together).
COMMITTED = sql.SQL(
    "SELECT partition, jsonb_object_agg(asset, rows), max(run_id) FROM {schema}.ledger "
    "WHERE asset = ANY(%(assets)s) AND lineage = %(lineage)s AND partition = ANY(%(partitions)s) "
    "GROUP BY partition HAVING count(*) = cardinality(%(assets)s)"
).format(schema=sql.Identifier(PLATFORM_SCHEMA))


RUN_ROWS = sql.SQL(
    "SELECT partition, rows FROM {schema}.ledger WHERE asset = %(asset)s AND run_id = %(run_id)s "
    "AND partition = ANY(%(partitions)s)"
).format(schema=sql.Identifier(PLATFORM_SCHEMA))


def lineage_of(run: dg.DagsterRun) -> str:
    """An explicit lineage (a re-run continuing an earlier attempt), else the backfill, else the root run."""
    if run.tags.get(LINEAGE_TAG):
        return run.tags[LINEAGE_TAG]
    backfill = run.tags.get(BACKFILL_TAG)
    return f"backfill:{backfill}" if backfill else f"run:{run.root_run_id or run.run_id}"


def asset_name(asset_key: dg.AssetKey) -> str:
    return asset_key.to_user_string()


def ensure(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('backfill_platform.ledger'))")
    conn.execute(DDL)


def committed(
    dsn: str, assets: Sequence[dg.AssetKey], lineage: str, partitions: Sequence[str]
) -> dict[str, tuple[dict[str, int], str]]:
    """The partitions of `partitions` this lineage already committed for every asset of `assets`: rows per asset
    and the run that committed them."""
    with psycopg.connect(dsn) as conn:
        ensure(conn)
        rows = conn.execute(
            COMMITTED,
            {"assets": [asset_name(a) for a in assets], "lineage": lineage, "partitions": list(partitions)},
        ).fetchall()
    return {partition: (counts, run_id) for partition, counts, run_id in rows}


def run_rows(dsn: str, asset_key: dg.AssetKey, run_id: str, partitions: Sequence[str]) -> dict[str, int]:
    """Rows this run committed per partition of an asset (for outputs written along with another asset)."""
    with psycopg.connect(dsn) as conn:
        ensure(conn)
        rows = conn.execute(
            RUN_ROWS, {"asset": asset_name(asset_key), "run_id": run_id, "partitions": list(partitions)}
        ).fetchall()
    return {p: n for p, n in rows}


def members_held(dsn: str, asset_key: dg.AssetKey, partitions: Sequence[str], lineage: str = "") -> dict[str, set[str]]:
    """Per partition of a table with members: the members whose rows are committed and settled (by any lineage),
    or committed at all by `lineage`. A configured member missing here is still due in that partition."""
    with psycopg.connect(dsn) as conn:
        ensure(conn)
        rows = conn.execute(
            HELD, {"asset": asset_name(asset_key), "partitions": list(partitions), "lineage": lineage}
        ).fetchall()
    return {partition: set(members) for partition, members in rows}
