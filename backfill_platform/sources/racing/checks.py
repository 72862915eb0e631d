"""Racing asset checks, scoped to the days of the run that triggered them (never a whole-table scan on a one-day
run): every race has runners, each chunk's races equal the API's `total` as the fetch saw it (no extra call), and
every entity a runner names exists."""

from datetime import date, timedelta

import dagster as dg
import psycopg
from dagster._core.events import DagsterEventType
from psycopg import sql

from backfill_platform.database import database_url, one_row
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.sources.checks import Findings, daily_check
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


def day_counts(conn: psycopg.Connection, query: sql.Composed, days: list[date]) -> dict[date, int]:
    """`query` (day, count) grouped by day over `days`."""
    return {day: n for day, n in conn.execute(query, (days,)).fetchall()}


@daily_check(RESULTS.key, "Every result race of the run's days has its runners.")
def results_have_runners(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    with psycopg.connect(database_url()) as conn:
        if absent := _absent(conn, days, RUNNERS):
            return absent
        races = day_counts(
            conn, sql.SQL("SELECT date, count(*) FROM {} WHERE date = ANY(%s) GROUP BY 1").format(RESULTS.ident), days
        )
        bare = day_counts(
            conn,
            sql.SQL(
                "SELECT t.date, count(*) FROM {results} t WHERE t.date = ANY(%s) AND NOT EXISTS "
                "(SELECT 1 FROM {runners} r WHERE r.race_id = t.race_id AND r.date = t.date) GROUP BY 1"
            ).format(runners=RUNNERS.ident, results=RESULTS.ident),
            days,
        )
    bad = {d.isoformat(): f"{n} races without runners" for d, n in bare.items()}
    return Findings(bad, {"races": sum(races.values()), "races_without_runners": sum(bare.values())})


def fetched_chunks(context: dg.AssetCheckExecutionContext) -> dict[str, int]:
    """Per results chunk this run fetched ("first..last"), the API's `total` its pages reported."""
    chunks: dict[str, int] = {}
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records
    for record in records:
        m = record.event_log_entry.asset_materialization
        if m is not None and m.asset_key == RESULTS.key and "chunk_api_total" in m.metadata:
            chunks[str(m.metadata["chunk"].value)] = int(m.metadata["chunk_api_total"].value)  # type: ignore[arg-type]
    return chunks


@daily_check(
    RESULTS.key,
    "Per chunk fetched by the run, races stored for its days equal the API's `total` for that range, "
    "as the fetch's own pages reported it (no extra call); each day of a chunk that differs fails.",
)
def results_match_api_totals(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    chunks = fetched_chunks(context)
    bad: dict[str, str] = {}
    with psycopg.connect(database_url()) as conn:
        for chunk, api_total in chunks.items():
            first, last = (date.fromisoformat(d) for d in chunk.split(".."))
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE date >= %s AND date <= %s").format(RESULTS.ident), (first, last)
            ).fetchone()
            stored = row[0] if row else 0
            if stored != api_total:
                members = (first + timedelta(days=n) for n in range((last - first).days + 1))
                bad.update({d.isoformat(): f"chunk {chunk}: postgres {stored} vs api {api_total}" for d in members})
    return Findings(bad, {"chunks_checked": len(chunks)})


@daily_check(RUNNERS.key, "Every entity id a runner of the run's days names is stored.")
def runner_entities_exist(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    missing: dict[str, dict[str, int]] = {}
    with psycopg.connect(database_url()) as conn:
        if absent := _absent(conn, days, *(table for _, table in REFERENCES)):
            return absent
        for column, table in REFERENCES:
            col = sql.Identifier(column)
            per_day = day_counts(
                conn,
                sql.SQL(
                    "SELECT r.date, count(DISTINCT r.{col}) FROM {runners} r WHERE r.date = ANY(%s) AND r.{col} <> '' "
                    "AND NOT EXISTS (SELECT 1 FROM {entity} e WHERE e.id = r.{col}) GROUP BY 1"
                ).format(col=col, runners=RUNNERS.ident, entity=table.ident),
                days,
            )
            for day, n in per_day.items():
                missing.setdefault(day.isoformat(), {})[table.name] = n
    return Findings(missing, {"days_with_missing_ids": len(missing)})


def _absent(conn: psycopg.Connection, days: list[date], *tables: TableSpec) -> Findings | None:
    """Every day failed, not an error, when a table the check reads was never materialized (a run that selected
    results without their runners): the step stays green and the check says what to materialize."""
    missing = [t for t in tables if one_row(conn, "SELECT to_regclass(%s)", (t.qualified,))[0] is None]
    if not missing:
        return None
    names = ", ".join(t.key.to_user_string() for t in missing)
    reason = f"{names} not materialized yet: materialize it with the run"
    return Findings({d.isoformat(): reason for d in days} or {"run": reason}, {"not_materialized": names})


CHECKS = (results_have_runners, results_match_api_totals, runner_entities_exist)
