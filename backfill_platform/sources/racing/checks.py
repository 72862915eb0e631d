"""Racing asset checks, scoped to the days of the run that triggered them (never a whole-table scan on a one-day
run): every race has runners, each chunk's races equal the API's `total` as the fetch saw it (no extra call), and
every entity a runner names exists."""

from datetime import date

import dagster as dg
import psycopg
from dagster._core.events import DagsterEventType
from psycopg import sql

from backfill_platform.automation.scope import run_days
from backfill_platform.database import database_url, one_row
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.sources.racing.tables import (
    DAMS,
    DAMSIRES,
    HORSES,
    JOCKEYS,
    OWNERS,
    RESULTS,
    RUNNERS,
    SIRES,
    TRAINERS,
)

REFERENCES = (
    ("horse_id", HORSES),
    ("jockey_id", JOCKEYS),
    ("trainer_id", TRAINERS),
    ("owner_id", OWNERS),
    ("sire_id", SIRES),
    ("dam_id", DAMS),
    ("damsire_id", DAMSIRES),
)


@dg.asset_check(asset=RESULTS.key, description="Every result race of the run's days has its runners.")
def results_have_runners(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    days = run_days(context, lambda: None)  # an unpartitioned run: no race day
    with psycopg.connect(database_url()) as conn:
        if absent := _absent(conn, RUNNERS):
            return absent
        races, bare = conn.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS "
                "(SELECT 1 FROM {runners} r WHERE r.race_id = t.race_id AND r.date = t.date)) "
                "FROM {results} t WHERE t.date = ANY(%s)"
            ).format(runners=RUNNERS.ident, results=RESULTS.ident),
            (days,),
        ).fetchone() or (0, 0)
    return dg.AssetCheckResult(
        passed=bare == 0, metadata={"days_checked": len(days), "races": races, "races_without_runners": bare}
    )


@dg.asset_check(
    asset=RESULTS.key,
    description="Per chunk fetched by the run, races stored for its days equal the API's `total` for that range, "
    "as the fetch's own pages reported it (no extra call).",
)
def results_match_api_totals(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    chunks: dict[str, int] = {}
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    for record in records:
        m = record.event_log_entry.asset_materialization
        if m is not None and m.asset_key == RESULTS.key and "chunk_api_total" in m.metadata:
            chunks[str(m.metadata["chunk"].value)] = int(m.metadata["chunk_api_total"].value)  # type: ignore[arg-type]
    mismatches = {}
    with psycopg.connect(database_url()) as conn:
        for chunk, api_total in chunks.items():
            first, last = chunk.split("..")
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE date >= %s AND date <= %s").format(RESULTS.ident),
                (date.fromisoformat(first), date.fromisoformat(last)),
            ).fetchone()
            stored = row[0] if row else 0
            if stored != api_total:
                mismatches[chunk] = f"postgres {stored} vs api {api_total}"
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={"chunks_checked": len(chunks), "mismatched_chunks": dg.MetadataValue.json(mismatches)},
    )


@dg.asset_check(asset=RUNNERS.key, description="Every entity id a runner of the run's days names is stored.")
def runner_entities_exist(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    days = run_days(context, lambda: None)  # an unpartitioned run: no race day
    missing: dict[str, int] = {}
    with psycopg.connect(database_url()) as conn:
        if absent := _absent(conn, *(table for _, table in REFERENCES)):
            return absent
        for column, table in REFERENCES:
            col = sql.Identifier(column)
            row = conn.execute(
                sql.SQL(
                    "SELECT count(DISTINCT r.{col}) FROM {runners} r WHERE r.date = ANY(%s) AND r.{col} <> '' "
                    "AND NOT EXISTS (SELECT 1 FROM {entity} e WHERE e.id = r.{col})"
                ).format(col=col, runners=RUNNERS.ident, entity=table.ident),
                (days,),
            ).fetchone()
            missing[table.name] = row[0] if row else 0
    return dg.AssetCheckResult(
        passed=not any(missing.values()),
        metadata={"days_checked": len(days), "missing_ids": dg.MetadataValue.json(missing)},
    )


def _absent(conn: psycopg.Connection, *tables: TableSpec) -> dg.AssetCheckResult | None:
    """A failed result, not an error, when a table the check reads was never materialized (a run that selected
    results without their runners): the step stays green and the check says what to materialize."""
    missing = [t for t in tables if one_row(conn, "SELECT to_regclass(%s)", (t.qualified,))[0] is None]
    if not missing:
        return None
    names = ", ".join(t.key.to_user_string() for t in missing)
    return dg.AssetCheckResult(passed=False, description=f"{names} not materialized yet: materialize it with the run")


CHECKS = (results_have_runners, results_match_api_totals, runner_entities_exist)
