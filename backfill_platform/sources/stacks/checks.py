"""Stacks asset checks over the run's days: unique keys, how far back each wallet reaches, non-final rows."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from backfill_platform.database import database_url
from backfill_platform.io_managers.ledger import members_held
from backfill_platform.sources.checks import Findings, daily_check, run_days
from backfill_platform.sources.stacks import settings
from backfill_platform.sources.stacks.tables import WALLET_TRANSACTIONS as TXS


def latest() -> date | None:
    """The day a check launched without partitions looks at: the newest stored."""
    with psycopg.connect(database_url()) as conn:
        (at,) = conn.execute(sql.SQL("SELECT max(block_time) FROM {}").format(TXS.ident)).fetchone() or (None,)
    return at.astimezone(UTC).date() if at is not None else None


def window_of(days: list[date]) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC of the days (None: no day)."""
    if not days:
        return None
    lo, hi = days[0], days[-1]
    return datetime(lo.year, lo.month, lo.day, tzinfo=UTC), datetime(hi.year, hi.month, hi.day, tzinfo=UTC) + timedelta(
        days=1
    )


def _query(query: sql.Composed, window: tuple[datetime, datetime], **params: object) -> list[tuple]:
    with psycopg.connect(database_url()) as conn:
        return conn.execute(query, {"start": window[0], "end": window[1], **params}).fetchall()


IN_WINDOW = sql.SQL("block_time >= %(start)s AND block_time < %(end)s")
DAY = sql.SQL("(block_time AT TIME ZONE 'UTC')::date")


@daily_check(
    TXS.key,
    "In the run's days: no (address, tx_id) twice, and a transaction held for several wallets has one block height "
    "and time.",
    latest,
)
def wallet_transactions_unique(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    window = window_of(days)
    if window is None:
        return Findings(run={"rows": 0})
    rows = _query(
        sql.SQL(
            "SELECT {day}, count(*), count(DISTINCT (address, tx_id)), "
            "count(DISTINCT tx_id) FILTER (WHERE tx_id IN (SELECT tx_id FROM {t} WHERE {w} GROUP BY tx_id "
            "HAVING count(DISTINCT (block_height, block_time)) > 1)) FROM {t} WHERE {w} GROUP BY 1"
        ).format(day=DAY, t=TXS.ident, w=IN_WINDOW),
        window,
    )
    bad = {
        d.isoformat(): {"duplicates": n - keys, "tx_ids_with_conflicting_blocks": conflicting}
        for d, n, keys, conflicting in rows
        if n != keys or conflicting
    }
    return Findings(bad, {"rows": sum(r[1] for r in rows), "duplicates": sum(r[1] - r[2] for r in rows)})


@dg.asset_check(
    asset=TXS.key,
    description="Per wallet, the oldest block time loaded in the run's days, and whether its history is committed "
    "(settled) on every day from BACKFILL_STACKS_START up to the run's last day: warns until it reaches that target.",
)
def wallet_history_reaches_start(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    from backfill_platform.sources.stacks import SOURCE  # the settings as this process reads them

    cfg = SOURCE.read_config()
    target = datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=UTC)
    window = window_of(run_days(context, latest))
    query = sql.SQL("SELECT address, min(block_time) FROM {} WHERE {} GROUP BY address").format(TXS.ident, IN_WINDOW)
    oldest = dict(_query(query, window)) if window else {}
    days = [(target + timedelta(days=n)).date().isoformat() for n in range((window[1] - target).days)] if window else []
    held = members_held(database_url(), TXS.key, days) if days else {}
    # Per wallet, the newest day from the target on that it is not held: None once its history reaches the target.
    gaps = {w: next((d for d in reversed(days) if w not in held.get(d, set())), None) for w in cfg["WALLETS"]}
    per_wallet = {
        w: {"oldest_in_run": oldest[w].isoformat() if w in oldest else None, "newest_gap": gaps[w]}
        for w in cfg["WALLETS"]
    }
    return dg.AssetCheckResult(
        passed=bool(days) and all(g is None for g in gaps.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "target": target.date().isoformat(),
            "run_starts": window[0].date().isoformat() if window else None,
            "wallets_short_of_target": sum(g is not None for g in gaps.values()),
            "per_wallet": dg.MetadataValue.json(per_wallet),
        },
    )


@daily_check(
    TXS.key,
    "Transactions stored with a status that is not final (they and their day stay due: a later run fetches them "
    "again).",
    latest,
    severity=dg.AssetCheckSeverity.WARN,
)
def wallet_transactions_final(context: dg.AssetCheckExecutionContext, days: list[date]) -> Findings:
    window = window_of(days)
    query = sql.SQL(
        "SELECT {day}::text, address, count(*) FROM {t} WHERE {w} "
        "AND NOT coalesce(tx_status = ANY(%(final)s), false) GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(day=DAY, t=TXS.ident, w=IN_WINDOW)
    rows = _query(query, window, final=sorted(settings.FINAL_STATUSES)) if window else []
    bad: dict[str, dict[str, int]] = {}
    for day, address, n in rows:
        bad.setdefault(day, {})[address] = n
    return Findings(bad, {"non_final": sum(n for _, _, n in rows)})


CHECKS = (wallet_transactions_unique, wallet_history_reaches_start, wallet_transactions_final)
