"""Typed iterators over a principal's transactions, newest first: v3 cursor pages, else v2 offset pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from backfill_platform.resources.http import ApiError, ApiSession
from backfill_platform.resources.pagination import newest_first_offset_items, next_cursor_pages
from backfill_platform.sources.stacks import settings


class WalletTx(NamedTuple):
    """One row of stacks.wallet_transactions (field names are its columns)."""

    address: str
    tx_id: str
    block_height: int
    block_time: datetime
    burn_block_time: datetime | None
    tx_index: int | None
    tx_type: str | None
    tx_status: str | None
    sender: str | None
    fee: str | None
    stx_sent: str | None
    stx_received: str | None
    contract_id: str | None
    function_name: str | None
    payload: dict

    @property
    def final(self) -> bool:
        return self.tx_status in settings.FINAL_STATUSES


def _time(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int | float) else None


def v3_row(address: str, item: dict) -> WalletTx:
    """A v3 result: {transaction: TransactionSummary, balance_changes: {stx: {sent, received}}, …}."""
    t, stx = item["transaction"], item["balance_changes"]["stx"]
    block, call = t["block"], t.get("contract_call") or {}
    return WalletTx(
        address=address,
        tx_id=t["tx_id"],
        block_height=block["height"],
        block_time=_time(block["time"]) or _missing("block.time"),
        burn_block_time=_time((t.get("bitcoin_block") or {}).get("time")),
        tx_index=block.get("tx_index"),
        tx_type=t.get("type"),
        tx_status=t.get("status"),
        sender=(t.get("sender") or {}).get("address"),
        fee=t.get("fee_rate"),
        stx_sent=stx.get("sent"),
        stx_received=stx.get("received"),
        contract_id=call.get("contract_id"),
        function_name=call.get("function_name"),
        payload=item,
    )


def v2_row(address: str, item: dict) -> WalletTx:
    """A v2 result: {tx: Transaction, stx_sent, stx_received, events}."""
    tx = item["tx"]
    call = tx.get("contract_call") or {}
    return WalletTx(
        address=address,
        tx_id=tx["tx_id"],
        block_height=tx["block_height"],
        block_time=_time(tx.get("block_time")) or _missing("tx.block_time"),
        burn_block_time=_time(tx.get("burn_block_time")),
        tx_index=tx.get("tx_index"),
        tx_type=tx.get("tx_type"),
        tx_status=tx.get("tx_status"),
        sender=tx.get("sender_address"),
        fee=tx.get("fee_rate"),
        stx_sent=item.get("stx_sent"),
        stx_received=item.get("stx_received"),
        contract_id=call.get("contract_id"),
        function_name=call.get("function_name"),
        payload=item,
    )


def _missing(field: str) -> Any:
    raise KeyError(field)


class StacksClient:
    """One session's walks. Which API version serves the walks is found on the first one and remembered."""

    def __init__(self, session: ApiSession, page_size: int = settings.PAGE_SIZE) -> None:
        self.session, self.page_size = session, page_size
        self.v3 = True
        self.lookup_served = True
        self._heights: dict[int, int | None] = {}
        self.pages = 0  # pages of transactions fetched (the block lookups are not pages)

    def height_at(self, moment: datetime) -> int | None:
        """The newest block mined before `moment` (one call per distinct moment), or None where not served."""
        stamp = int(moment.timestamp()) - 1
        if stamp not in self._heights and self.lookup_served:
            route = settings.BLOCK_BY_TIME_ROUTE.format(timestamp=stamp)
            try:
                self._heights[stamp] = int(self.session.get(route)["height"])
            except ApiError as exc:
                if exc.status not in settings.NOT_SERVED:
                    raise
                self.lookup_served = False
            except (KeyError, TypeError, ValueError):
                raise ApiError("stacks", settings.BLOCK_BY_TIME_ROUTE, "malformed answer: no block height") from None
        return self._heights.get(stamp)

    def walk(self, address: str, end: datetime) -> Iterator[WalletTx]:
        """The wallet's transactions newest first, from the newest block before `end` (the chain head where the
        height is unknown) down to its first; the caller stops reading once it has passed its start."""
        if self.v3:
            start = self.height_at(end) if end < datetime.now(UTC) else None
            cursor = settings.START_CURSOR.format(height=start + 1) if start is not None else None
            before = self.pages
            try:
                yield from self._v3(address, cursor)
                return
            except ApiError as exc:
                if exc.status not in settings.NOT_SERVED or self.pages - before > 1:
                    raise _explained(address, exc) from None
                self.v3 = False  # not served here: every walk of this run pages v2 offsets instead
        yield from self._v2(address)

    def _v3(self, address: str, start: str | None) -> Iterator[WalletTx]:
        route = settings.V3_TRANSACTIONS_ROUTE.format(principal=address)

        def page(cursor: str | None) -> dict:
            self.pages += 1
            at = cursor or start
            return self.session.get(route, {"limit": self.page_size, **({"cursor": at} if at else {})})

        for body in next_cursor_pages(page):
            yield from _rows(route, address, body, v3_row)

    def _v2(self, address: str) -> Iterator[WalletTx]:
        """Offset pages from the head: rows pushed down by blocks arriving meanwhile come back, skipped by tx_id."""
        route = settings.V2_TRANSACTIONS_ROUTE.format(principal=address)

        def page(offset: int, limit: int) -> dict:
            self.pages += 1
            try:
                return _checked(route, self.session.get(route, {"limit": limit, "offset": offset}))
            except ApiError as exc:
                raise _explained(address, exc) from None

        for item in newest_first_offset_items(page, self.page_size, lambda i: (i.get("tx") or {}).get("tx_id")):
            yield from _rows(route, address, {"results": [item]}, v2_row)


def _checked(route: str, body: Any) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ApiError("stacks", route, "malformed page: expected {results: [...]}")
    return body


def _rows(route: str, address: str, body: Any, parse: Any) -> Iterator[WalletTx]:
    for item in _checked(route, body)["results"]:
        try:
            yield parse(address, item)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ApiError("stacks", route, f"malformed page: a transaction lacks {exc}") from None


def _explained(address: str, exc: ApiError) -> ApiError:
    """A 400 names the address: the API refuses it as a principal."""
    if exc.status == 400:
        reason = str(exc).split(": ", 1)[-1]
        fix = f"wallet {address!r} is not a valid Stacks address; fix BACKFILL_STACKS_WALLETS"
        return ApiError("stacks", exc.route, f"{reason}; {fix}", exc.status)
    return exc
