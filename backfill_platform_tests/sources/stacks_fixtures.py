"""Shared by the Stacks tests and benchmark: the generator's ground truth, assets for a wallet list, resources."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import psycopg

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import StacksApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import stacks as data
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.stacks import assets, partitions

CFG = SandboxConfig()
BUSY = data.busy_wallets(CFG.seed)
ASSET = "stacks/wallet_transactions"


def span(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


def truth(wallet: str, first: date, last: date, revision: int = 0) -> dict[tuple[str, str], dict]:
    """(address, tx_id) → the generator's transaction, for the wallet's blocks inside first..last."""
    start, end = span(first, last)
    others = data.wallets(CFG.seed, CFG.stacks_wallets)
    out = {}
    for key in data.history(CFG.seed, wallet, CFG.scale):
        if start <= data.block_time(key[0]) < end:
            tx = data.transaction(CFG.seed, wallet, key, others, revision)
            out[(wallet, tx["tx_id"])] = tx
    return out


def pages(wallet: str, first: date, last: date) -> int:
    """The pages of one v3 walk from the range's end: the block just after it (the cursor's), its rows, and the first
    older one that ends it, 50 a page."""
    start, end = span(first, last)
    history = data.history(CFG.seed, wallet, CFG.scale)
    after = data.height_at(end - timedelta(seconds=1)) + 1
    inside = sum(1 for k in history if start <= data.block_time(k[0]) < end or k[0] == after)
    older = any(data.block_time(k[0]) < start for k in history)
    return max(1, math.ceil((inside + older) / 50))


def wallet_assets(wallets: tuple[str, ...], start: date = date(2026, 5, 1)) -> list[dg.AssetsDefinition]:
    cfg = SourceConfig("stacks", start, "UTC", {"WALLETS": wallets})
    return assets.build(cfg, partitions.daily(cfg))


def resources(origin: str, db_url: str, **kw) -> dict:
    stacks = StacksApi(
        base_url=f"{origin}/stacks",
        api_key=kw.pop("api_key", CFG.stacks_api_key),
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        **kw,
    )
    return {"stacks": stacks, "io_manager": PostgresIOManager(database_url=db_url)}


def range_tags(first: date, last: date, **extra: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        **extra,
    }


def stored(db_url: str) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(db_url) as conn:
        if conn.execute("SELECT to_regclass('stacks.wallet_transactions')").fetchone() == (None,):
            return {}
        return {
            (r[0], r[1]): r[2:]
            for r in conn.execute(
                "SELECT address, tx_id, block_height, tx_status, fee, stx_sent, stx_received, tx_type, "
                "contract_id, block_time FROM stacks.wallet_transactions"
            )
        }
