"""Stacks wallets: each tracked address has its own transaction history, newest first, varied in size."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from backfill_platform.sandbox.generators import hex_id, rng_for

C32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GENESIS = datetime(2021, 1, 14, tzinfo=UTC)
BLOCK_SECONDS = 600  # one anchored block every ten minutes in the simulation
TX_TYPES = ("token_transfer",) * 6 + ("contract_call",) * 3 + ("smart_contract",)


def wallet_address(seed: int, n: int | str) -> str:
    digest = hex_id(38, seed, "wallet", n)
    return "SP" + "".join(C32[int(digest[i : i + 2], 16) % 32] for i in range(0, 76, 2))


def wallets(seed: int, count: int = 20) -> tuple[str, ...]:
    return tuple(wallet_address(seed, n) for n in range(count))


# Busy wallets (an exchange's, a market maker's): `30 + 20 n` transactions a day over the half year to the top, so
# a week of one is several pages and a run over months is a long walk.
BUSY_SINCE = datetime(2026, 5, 1, tzinfo=UTC)
# The history up to here is drawn per wallet at once (tests and benchmarks pin their ranges inside it); every day
# after it, up to yesterday, is drawn on its own at the wallet's usual rate, so the chain keeps growing like the
# other simulators' data and "the last 30 days" always has transactions.
SETTLED_UNTIL = datetime(2026, 11, 1, tzinfo=UTC)


def busy_wallets(seed: int, count: int = 3) -> tuple[str, ...]:
    return tuple(wallet_address(seed, f"busy-{n}") for n in range(count))


def block_time(height: int) -> datetime:
    return GENESIS + timedelta(seconds=height * BLOCK_SECONDS)


def height_at(moment: datetime) -> int:
    return int((moment - GENESIS).total_seconds() // BLOCK_SECONDS)


def _today() -> date:
    return datetime.now(UTC).date()


def _top(today: date) -> int:
    """The newest settled block: the start of today (UTC), or of the fixed history's end if that is later."""
    return height_at(max(SETTLED_UNTIL, datetime(today.year, today.month, today.day, tzinfo=UTC)))


def _span(seed: int, address: str, scale: float) -> tuple[random.Random, int, int]:
    """The wallet's fixed history: its generator (past the draws made here), first block and count."""
    rng = rng_for(seed, "stacks", address)
    busy = busy_wallets(seed)
    top = height_at(SETTLED_UNTIL)
    if address in busy:
        first = height_at(BUSY_SINCE)
        return rng, first, int((30 + 20 * busy.index(address)) * scale * (top - first) * BLOCK_SECONDS / 86_400)
    count = int(min(20_000, 30 * scale * rng.paretovariate(1.2)))
    return rng, rng.randrange(0, top // 2), count


@lru_cache(maxsize=256)
def _history(seed: int, address: str, scale: float) -> tuple[tuple[int, int, int], ...]:
    """(block_height, microblock_sequence, tx_index) of the wallet's settled transactions, newest first."""
    rng, first, count = _span(seed, address, scale)
    top = height_at(SETTLED_UNTIL)
    keys = {(rng.randrange(first, top), 2147483647, rng.randrange(0, 300)) for _ in range(count)}
    return tuple(sorted(keys, reverse=True))


@lru_cache(maxsize=256)
def _daily_rate(seed: int, address: str, scale: float) -> float:
    """The wallet's mean transactions a day over its fixed history."""
    _, first, count = _span(seed, address, scale)
    return count * 86_400 / ((height_at(SETTLED_UNTIL) - first) * BLOCK_SECONDS)


@lru_cache(maxsize=8192)
def _day(seed: int, address: str, scale: float, day: date) -> tuple[tuple[int, int, int], ...]:
    """One day after the fixed history, newest first, drawn from the day alone."""
    rng = rng_for(seed, "stacks-day", address, day.isoformat())
    rate = _daily_rate(seed, address, scale)
    count = int(rate) + (rng.random() < rate - int(rate))
    first = height_at(datetime(day.year, day.month, day.day, tzinfo=UTC))
    blocks = 86_400 // BLOCK_SECONDS
    keys = {(rng.randrange(first, first + blocks), 2147483647, rng.randrange(0, 300)) for _ in range(count)}
    return tuple(sorted(keys, reverse=True))


def _since_settled(seed: int, address: str, scale: float, today: date) -> list[tuple[int, int, int]]:
    days = (today - SETTLED_UNTIL.date()).days
    out: list[tuple[int, int, int]] = []
    for n in range(days - 1, -1, -1):
        out.extend(_day(seed, address, scale, SETTLED_UNTIL.date() + timedelta(days=n)))
    return out


# Revision 1 of the data lists about one transaction in PENDING_SHARE as not yet final; revision 2 settles them.
PENDING_SHARE = 0.1


def pending(seed: int, address: str, key: tuple[int, int, int], revision: int) -> bool:
    """Whether this transaction is listed with a non-final status at this revision of the data."""
    return revision == 1 and rng_for(seed, "stacks-pending", address, key[0], key[2]).random() < PENDING_SHARE


def transaction(
    seed: int, address: str, key: tuple[int, int, int], other_wallets: tuple[str, ...], revision: int = 0
) -> dict:
    height, micro, index = key
    rng = rng_for(seed, "stacks-tx", address, height, index)
    tx_type = rng.choice(TX_TYPES)
    sender = address if rng.random() < 0.5 else rng.choice(other_wallets)
    recipient = address if sender != address else rng.choice(other_wallets)
    bt = block_time(height)
    tx = {
        "tx_id": "0x" + hex_id(32, seed, "tx", height, index, sender),
        "nonce": rng.randrange(0, 5000),
        "fee_rate": str(rng.randrange(180, 300_000)),
        "sender_address": sender,
        "sponsored": False,
        "post_condition_mode": "deny",
        "post_conditions": [],
        "anchor_mode": "any",
        "block_hash": "0x" + hex_id(32, "block", height),
        "block_height": height,
        "block_time": int(bt.timestamp()),
        "block_time_iso": bt.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "burn_block_time": int(bt.timestamp()),
        "burn_block_time_iso": bt.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "burn_block_height": 666_050 + height // 3,
        "parent_burn_block_time": int(bt.timestamp()) - 600,
        "parent_burn_block_time_iso": (bt - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "canonical": True,
        "tx_index": index,
        "tx_status": "success" if rng.random() > 0.05 else "abort_by_response",
        "tx_result": {"hex": "0x0703", "repr": "(ok true)"},
        "event_count": 1,
        "events": [],
        "parent_block_hash": "0x" + hex_id(32, "block", height - 1),
        "is_unanchored": False,
        "microblock_hash": "0x",
        "microblock_sequence": micro,
        "microblock_canonical": True,
        "execution_cost_read_count": rng.randrange(0, 50),
        "execution_cost_read_length": rng.randrange(0, 5000),
        "execution_cost_runtime": rng.randrange(0, 10**6),
        "execution_cost_write_count": rng.randrange(0, 10),
        "execution_cost_write_length": rng.randrange(0, 500),
        "vm_error": None,
        "tx_type": tx_type,
    }
    if pending(seed, address, key, revision):
        tx["tx_status"] = "pending"
    if tx_type == "token_transfer":
        tx["token_transfer"] = {
            "recipient_address": recipient,
            "amount": str(rng.randrange(1, 10**10)),
            "memo": "0x" + "00" * 34,
        }
    elif tx_type == "contract_call":
        tx["contract_call"] = {
            "contract_id": "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-swap-v2-1",
            "function_name": "swap-x-for-y",
            "function_signature": "(define-public (swap-x-for-y))",
            "function_args": [],
        }
    else:
        tx["smart_contract"] = {
            "clarity_version": 2,
            "contract_id": f"{sender}.contract-{index}",
            "source_code": "(define-read-only (hello) (ok u1))",
        }
    return tx


def head_height(arrivals: int = 0) -> int:
    """The chain tip: the newest settled block plus the blocks that arrived since."""
    return _top(_today()) + arrivals


def history(seed: int, address: str, scale: float = 1.0, arrivals: int = 0) -> list[tuple[int, int, int]]:
    """The wallet's keys newest first; `arrivals` new transactions appear above the settled ones."""
    today = _today()
    top = _top(today)
    fresh = [(top + n, 2147483647, 0) for n in range(arrivals, 0, -1)]
    return fresh + _since_settled(seed, address, scale, today) + list(_history(seed, address, scale))
