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
    PRIMARY KEY (asset, partition, lineage)
);
CREATE TABLE IF NOT EXISTS {schema}.partition_members (
    asset text NOT NULL,
    partition text NOT NULL,
    members text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset, partition)
);
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

# The members a committed partition holds (a source's symbols, wallets, …), by any run: the union of every commit's.
HOLD = sql.SQL("""
INSERT INTO {schema}.partition_members AS held (asset, partition, members)
VALUES (%(asset)s, %(partition)s, %(members)s)
ON CONFLICT (asset, partition) DO UPDATE SET
    members = ARRAY(SELECT DISTINCT m FROM unnest(held.members || EXCLUDED.members) m ORDER BY m), updated_at = now()
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

HELD = sql.SQL(
    "SELECT partition, members FROM {schema}.partition_members "
    "WHERE asset = %(asset)s AND partition = ANY(%(partitions)s)"
).format(schema=sql.Identifier(PLATFORM_SCHEMA))

RECORD = sql.SQL("""
INSERT INTO {schema}.ledger (asset, partition, lineage, run_id, rows, bytes, seconds)
VALUES (%(asset)s, %(partition)s, %(lineage)s, %(run_id)s, %(rows)s, %(bytes)s, %(seconds)s)
ON CONFLICT (asset, partition, lineage) DO UPDATE SET
    run_id = EXCLUDED.run_id, rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, seconds = EXCLUDED.seconds,
    committed_at = now()
""").format(schema=sql.Identifier(PLATFORM_SCHEMA))

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


def held(dsn: str, asset_key: dg.AssetKey, partitions: Sequence[str]) -> dict[str, frozenset[str]]:
    """The members each of `partitions` already holds, committed by any run (see spec.MemberBatches)."""
    with psycopg.connect(dsn) as conn:
        ensure(conn)
        rows = conn.execute(HELD, {"asset": asset_name(asset_key), "partitions": list(partitions)}).fetchall()
    return {partition: frozenset(members) for partition, members in rows}
