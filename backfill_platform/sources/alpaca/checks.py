"""Alpaca asset checks on the days the triggering run wrote: unique keys, OHLC sanity, symbols with bars per day.

Every configured timeframe's three checks are one multi-asset check: one step per run (a step is a process of its
own under the multiprocess executor, seconds each on a busy machine), evaluating only the checks selected."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.automation.scope import run_days
from backfill_platform.database import database_url
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.sources.alpaca.tables import bars_table
from backfill_platform.sources.contract import SourceConfig

DESCRIPTIONS = {
    "unique_keys": "No (symbol, t) twice in the run's days.",
    "ohlc_sane": "low <= open, close <= high and volume >= 0, in the run's days.",
    "symbols_with_bars": "Per open day of the run, the share of the universe with bars (a warning below the share).",
}


def run_window(context: dg.AssetCheckExecutionContext, zone: ZoneInfo) -> tuple[datetime, datetime, int]:
    """[first midnight, midnight after the last day) of the run's days, in New York, and how many days."""
    # an unpartitioned check run: the last week before today
    days = run_days(context, lambda: None) or [datetime.now(zone).date() - timedelta(days=n) for n in range(7, 0, -1)]
    first, last = days[0], days[-1]

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone)

    return midnight(first), midnight(last + timedelta(days=1)), (last - first).days + 1


def build(config: SourceConfig) -> list[dg.AssetChecksDefinition]:
    """Three checks per configured timeframe's asset, in one multi-asset check."""
    tables = [bars_table(tf) for tf in config["TIMEFRAMES"]]
    specs = [
        dg.AssetCheckSpec(name, asset=table.key, description=text)
        for table in tables
        for name, text in DESCRIPTIONS.items()
    ]
    zone, universe, min_share = ZoneInfo(config.timezone), config["SYMBOLS"], config["MIN_SYMBOL_SHARE"]

    @dg.multi_asset_check(name="alpaca_bars_checks", specs=specs, can_subset=True)
    def bars_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        start, end, days = run_window(context, zone)
        selected = context.selected_asset_check_keys
        with psycopg.connect(database_url()) as conn:
            for table in tables:
                wanted = [n for n in DESCRIPTIONS if dg.AssetCheckKey(table.key, n) in selected]
                if wanted:
                    yield from _evaluate(conn, table, wanted, start, end, days, universe, min_share, zone.key)

    return [bars_checks]


def _evaluate(
    conn: psycopg.Connection,
    table: TableSpec,
    wanted: list[str],
    start: datetime,
    end: datetime,
    days: int,
    universe: tuple[str, ...],
    min_share: float,
    zone: str,
) -> Iterator[dg.AssetCheckResult]:
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table.qualified,)).fetchone()
    where = sql.SQL(" FROM {} WHERE t >= %(start)s AND t < %(end)s").format(table.ident)
    params = {"start": start, "end": end, "zone": zone, "universe": list(universe)}

    def one(select: sql.SQL) -> tuple:
        row = conn.execute(select + where, params).fetchone() if exists and exists[0] else None
        return tuple(row) if row else (0, 0)

    key = table.key
    if "unique_keys" in wanted:
        total, distinct = one(sql.SQL("SELECT count(*), count(DISTINCT (symbol, t))"))
        yield dg.AssetCheckResult(
            check_name="unique_keys",
            passed=total == distinct,
            metadata={"days": days, "bars": total, "duplicates": total - distinct},
            asset_key=key,
        )
    if "ohlc_sane" in wanted:
        bad, total = one(
            sql.SQL("SELECT count(*) FILTER (WHERE NOT (l <= o AND o <= h AND l <= c AND c <= h AND v >= 0)), count(*)")
        )
        yield dg.AssetCheckResult(
            check_name="ohlc_sane",
            passed=bad == 0,
            metadata={"days": days, "bars": total, "insane_bars": bad},
            asset_key=key,
        )
    if "symbols_with_bars" in wanted:
        per_day = []
        if exists and exists[0]:
            query = sql.SQL(
                "SELECT (t AT TIME ZONE %(zone)s)::date, "
                "count(DISTINCT symbol) FILTER (WHERE symbol = ANY(%(universe)s))"
            )
            per_day = conn.execute(query + where + sql.SQL(" GROUP BY 1 ORDER BY 1"), params).fetchall()
        # A day without any bar is a closed market (weekend, holiday): not held against the universe.
        shares = {d.isoformat(): round(n / len(universe), 4) for d, n in per_day}
        low = {d: s for d, s in shares.items() if s < min_share}
        yield dg.AssetCheckResult(
            check_name="symbols_with_bars",
            passed=not low,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "days": days,
                "open_days": len(shares),
                "universe": len(universe),
                "min_share": min_share,
                "lowest_share": min(shares.values(), default=1.0),
                "days_below_share": dg.MetadataValue.json(low),
            },
            asset_key=key,
        )
