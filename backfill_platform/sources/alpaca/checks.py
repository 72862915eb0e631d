"""Alpaca asset checks on the days the triggering run wrote: unique keys, OHLC sanity, symbols with bars per day."""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url, fetch_one
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources.alpaca.symbols import Timeframe
from backfill_platform.sources.alpaca.tables import bars_table
from backfill_platform.sources.contract import SourceConfig


def run_window(context: dg.AssetCheckExecutionContext, zone: ZoneInfo) -> tuple[datetime, datetime, int]:
    """[first midnight, midnight after the last day) of the run's days, in New York, and how many days."""
    tags = context.run.tags
    if RANGE_START_TAG in tags:
        first, last = date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
    elif "dagster/partition" in tags:
        first = last = date.fromisoformat(tags["dagster/partition"])
    else:  # an unpartitioned check run: the last week before today
        last = datetime.now(zone).date() - timedelta(days=1)
        first = last - timedelta(days=6)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone)

    return midnight(first), midnight(last + timedelta(days=1)), (last - first).days + 1


def _exists(spec: TableSpec) -> bool:
    return fetch_one(sql.SQL("SELECT to_regclass(%s) IS NOT NULL"), (spec.qualified,))[0]


def build(config: SourceConfig) -> list[dg.AssetChecksDefinition]:
    """Three checks per configured timeframe's asset."""
    return [check for tf in config["TIMEFRAMES"] for check in checks_for(tf, config)]


def checks_for(tf: Timeframe, config: SourceConfig) -> Sequence[dg.AssetChecksDefinition]:
    spec, zone = bars_table(tf), ZoneInfo(config.timezone)
    universe: tuple[str, ...] = config["SYMBOLS"]
    min_share: float = config["MIN_SYMBOL_SHARE"]
    where = sql.SQL("FROM {} WHERE t >= %(start)s AND t < %(end)s").format(spec.ident)

    @dg.asset_check(asset=spec.key, name="unique_keys", description="No (symbol, t) twice in the run's days.")
    def unique_keys(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        start, end, days = run_window(context, zone)
        total, distinct = (
            (0, 0)
            if not _exists(spec)
            else fetch_one(
                sql.SQL("SELECT count(*), count(DISTINCT (symbol, t)) ") + where, {"start": start, "end": end}
            )
        )
        return dg.AssetCheckResult(
            passed=total == distinct, metadata={"days": days, "bars": total, "duplicates": total - distinct}
        )

    @dg.asset_check(
        asset=spec.key, name="ohlc_sane", description="low <= open, close <= high and volume >= 0, in the run's days."
    )
    def ohlc_sane(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        start, end, days = run_window(context, zone)
        bad, total = (
            (0, 0)
            if not _exists(spec)
            else fetch_one(
                sql.SQL(
                    "SELECT count(*) FILTER (WHERE NOT (l <= o AND o <= h AND l <= c AND c <= h AND v >= 0)), count(*) "
                )
                + where,
                {"start": start, "end": end},
            )
        )
        return dg.AssetCheckResult(passed=bad == 0, metadata={"days": days, "bars": total, "insane_bars": bad})

    @dg.asset_check(
        asset=spec.key,
        name="symbols_with_bars",
        description=f"Per open day of the run, the share of the universe with bars (a warning below {min_share}).",
    )
    def symbols_with_bars(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        start, end, days = run_window(context, zone)
        per_day = (
            {}
            if not _exists(spec)
            else dict(
                fetch_all(
                    sql.SQL(
                        "SELECT (t AT TIME ZONE %(zone)s)::date, count(DISTINCT symbol) FILTER "
                        "(WHERE symbol = ANY(%(universe)s)) "
                    )
                    + where
                    + sql.SQL(" GROUP BY 1 ORDER BY 1"),
                    {"start": start, "end": end, "zone": config.timezone, "universe": list(universe)},
                )
            )
        )
        # A day without any bar is a closed market (weekend, holiday): not held against the universe.
        shares = {d.isoformat(): round(n / len(universe), 4) for d, n in per_day.items()}
        low = {d: s for d, s in shares.items() if s < min_share}
        return dg.AssetCheckResult(
            passed=not low,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "days": days,
                "open_days": len(shares),
                "universe": len(universe),
                "lowest_share": min(shares.values(), default=1.0),
                "days_below_share": dg.MetadataValue.json(low),
            },
        )

    return [unique_keys, ohlc_sane, symbols_with_bars]


def fetch_all(query: sql.Composed, params: dict) -> list[tuple]:
    with psycopg.connect(database_url()) as conn:
        return conn.execute(query, params).fetchall()
