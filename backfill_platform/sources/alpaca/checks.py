"""Alpaca asset checks on the days the triggering run wrote: unique keys, OHLC sanity, symbols with bars per day.

Every configured timeframe's three checks are one multi-asset check: one step per run (a step is a process of its
own under the multiprocess executor, seconds each on a busy machine), evaluating only the checks selected."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.sources.alpaca.tables import bars_table
from backfill_platform.sources.checks import Findings, per_partition, run_days
from backfill_platform.sources.contract import SourceConfig

DESCRIPTIONS = {
    "unique_keys": "No (symbol, t) twice, per day of the run.",
    "ohlc_sane": "low <= open, close <= high and volume >= 0, per day of the run.",
    "symbols_with_bars": "Per open day of the run, the share of the universe with bars (a warning below the share).",
}


def build(config: SourceConfig, partitions: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """Three checks of days per configured timeframe's asset, in one multi-asset check."""
    tables = [bars_table(tf) for tf in config["TIMEFRAMES"]]
    specs = [
        dg.AssetCheckSpec(name, asset=table.key, description=text, partitions_def=partitions)
        for table in tables
        for name, text in DESCRIPTIONS.items()
    ]
    zone, universe, min_share = ZoneInfo(config.timezone), config["SYMBOLS"], config["MIN_SYMBOL_SHARE"]

    @dg.multi_asset_check(name="alpaca_bars_checks", specs=specs, can_subset=True)
    def bars_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        # a check run with no partition: the last week before today
        days = run_days(context) or [datetime.now(zone).date() - timedelta(days=n) for n in range(7, 0, -1)]
        window = (midnight(days[0], zone), midnight(days[-1] + timedelta(days=1), zone))
        selected = context.selected_asset_check_keys
        with psycopg.connect(database_url()) as conn:
            for table in tables:
                wanted = [n for n in DESCRIPTIONS if dg.AssetCheckKey(table.key, n) in selected]
                if not wanted:
                    continue
                found = _evaluate(conn, table, wanted, window, universe, min_share, zone.key)
                for name in wanted:
                    severity = WARN if name == "symbols_with_bars" else dg.AssetCheckSeverity.ERROR
                    yield from per_partition(context, dg.AssetCheckKey(table.key, name), days, found[name], severity)

    return [bars_checks]


WARN = dg.AssetCheckSeverity.WARN


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _evaluate(
    conn: psycopg.Connection,
    table: TableSpec,
    wanted: list[str],
    window: tuple[datetime, datetime],
    universe: tuple[str, ...],
    min_share: float,
    zone: str,
) -> dict[str, Findings]:
    """Per wanted check, the days (in New York) it finds wrong, from one grouped scan of the run's window."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table.qualified,)).fetchone()
    rows: list[tuple] = []
    if exists and exists[0]:
        rows = conn.execute(
            sql.SQL(
                "SELECT (t AT TIME ZONE %(zone)s)::date, count(*), count(DISTINCT (symbol, t)), "
                "count(*) FILTER (WHERE NOT (l <= o AND o <= h AND l <= c AND c <= h AND v >= 0)), "
                "count(DISTINCT symbol) FILTER (WHERE symbol = ANY(%(universe)s)) "
                "FROM {} WHERE t >= %(start)s AND t < %(end)s GROUP BY 1 ORDER BY 1"
            ).format(table.ident),
            {"start": window[0], "end": window[1], "zone": zone, "universe": list(universe)},
        ).fetchall()
    bars = sum(r[1] for r in rows)
    out: dict[str, Findings] = {}
    if "unique_keys" in wanted:
        dupes = {d.isoformat(): f"{n - distinct} duplicate bars" for d, n, distinct, _, _ in rows if n != distinct}
        out["unique_keys"] = Findings(dupes, {"bars": bars, "duplicates": sum(r[1] - r[2] for r in rows)})
    if "ohlc_sane" in wanted:
        insane = {d.isoformat(): f"{bad} insane bars" for d, _, _, bad, _ in rows if bad}
        out["ohlc_sane"] = Findings(insane, {"bars": bars, "insane_bars": sum(r[3] for r in rows)})
    if "symbols_with_bars" in wanted:
        # A day without any bar is a closed market (weekend, holiday): not held against the universe.
        shares = {d.isoformat(): round(n / len(universe), 4) for d, _, _, _, n in rows}
        low = {
            d: f"{s:.1%} of {len(universe)} symbols have bars (below {min_share:.0%})"
            for d, s in shares.items()
            if s < min_share
        }
        out["symbols_with_bars"] = Findings(
            low,
            {
                "open_days": len(shares),
                "universe": len(universe),
                "min_share": min_share,
                "lowest_share": min(shares.values(), default=1.0),
            },
        )
    return out
