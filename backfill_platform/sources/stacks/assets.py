"""Stacks asset: each tracked wallet walked once per run, newest first, its rows handed over day by day."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.spec import Due, MemberBatches, PartitionBatch
from backfill_platform.resources.apis import StacksApi
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.fetching import fetched_tables
from backfill_platform.sources.stacks import settings
from backfill_platform.sources.stacks.client import StacksClient, WalletTx
from backfill_platform.sources.stacks.tables import WALLET_TRANSACTIONS

_DONE = object()


def day_start(key: str) -> datetime:
    return datetime.fromisoformat(key).replace(tzinfo=UTC)


class Walk:
    """One wallet's single walk of a run, read day by day from the newest: `take(start, end)` consumes the rows of
    one day and keeps the first older row for the next day, so no page is fetched twice and none past the start."""

    def __init__(self, client: StacksClient, address: str, end: datetime) -> None:
        self.rows: Iterator[WalletTx] = client.walk(address, end)
        self.ahead: Any = None
        self.seen: set[str] = set()
        self.walked = 0

    def take(self, start: datetime, end: datetime) -> list[WalletTx]:
        out: list[WalletTx] = []
        while True:
            if self.ahead is None:
                self.ahead = next(self.rows, _DONE)
                if self.ahead is not _DONE:
                    self.walked += 1
            row = self.ahead
            if row is _DONE or row.block_time < start:
                return out
            self.ahead = None
            if row.block_time < end and row.tx_id not in self.seen:
                self.seen.add(row.tx_id)
                out.append(row)

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def fetch_wallet_transactions(
    context: dg.AssetExecutionContext, stacks: StacksApi, wallets: Sequence[str]
) -> MemberBatches:
    """The due (day, wallet) pairs in one walk per wallet: from the end of its newest due day back past the start of
    its oldest, newest first; each day is handed over with every due wallet's rows of that day."""
    if not wallets:
        raise ConfigurationError(
            "BACKFILL_STACKS_WALLETS is not set; export the tracked addresses as a comma list "
            "(BACKFILL_STACKS_WALLETS=SP2J6…,SP3F…) or a file of them (BACKFILL_STACKS_WALLETS=@wallets.txt)"
        )
    session = stacks.session()
    client = StacksClient(session)
    run_start = session.metrics.snapshot()
    walks: dict[str, Walk] = {}

    def produce(due: Due) -> Iterator[PartitionBatch]:
        days = sorted(due, reverse=True)
        try:
            for key in days:
                start = day_start(key)
                end = start + timedelta(days=1)
                before = session.metrics.snapshot()
                rows: list[WalletTx] = []
                unsettled: list[str] = []
                for address in due[key]:
                    if address not in walks:
                        walks[address] = Walk(client, address, end)
                    got = walks[address].take(start, end)
                    rows.extend(got)
                    if any(not r.final for r in got):
                        unsettled.append(address)
                cost = session.metrics.since(before)
                yield PartitionBatch(
                    key,
                    rows,
                    columns=WalletTx._fields,
                    members=due[key],
                    unsettled=tuple(unsettled),
                    metadata={
                        "api_calls": int(cost["calls"]),
                        "api_http_429": int(cost["http_429"]),
                        "wallets": len(due[key]),
                        "non_final_wallets": len(unsettled),
                    },
                )
        finally:
            for walk in walks.values():
                walk.close()

    def summary() -> dict[str, Any]:
        walked = {a: w.walked for a, w in walks.items()}
        floor = sum(math.ceil(n / settings.PAGE_SIZE) for n in walked.values())
        spent = session.metrics.since(run_start)
        return {
            **{f"api_{k}": v for k, v in spent.items()},
            "wallets_walked": len(walked),
            "transactions_walked": sum(walked.values()),
            "pages_floor": floor,
            "api_version": "v3" if client.v3 else "v2",
        }

    return MemberBatches(wallets, produce, summary=summary)


def build(config: SourceConfig, partitions: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    wallets: tuple[str, ...] = config["WALLETS"]
    return [
        fetched_tables(
            source="stacks",
            parent=WALLET_TRANSACTIONS,
            partitions_def=partitions,
            fetch=lambda context, stacks: fetch_wallet_transactions(context, stacks, wallets),
        )
    ]
