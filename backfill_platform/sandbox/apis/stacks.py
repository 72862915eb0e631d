"""Hiro Stacks API: a principal's transactions, newest first (v1/v2 offset pages, v3 cursor pages)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.core import FixedWindow, Sandbox, api_endpoint, json_response
from backfill_platform.sandbox.generators import hex_id
from backfill_platform.sandbox.generators import stacks as data

MAX_LIMIT = 50
DEFAULT_LIMIT = 20
PRINCIPAL = re.compile(r"^S[PMTN][0-9A-HJKMNP-TV-Z]{38,40}(\.[a-zA-Z][a-zA-Z0-9-]{0,127})?$")
CURSOR = re.compile(r"^[0-9]+:[0-9]+:[0-9]+$")
DEPRECATED = '299 - "Deprecated: See https://docs.hiro.so/stacks/api for v3 endpoints"'


def error_body(status: int) -> bytes:
    if status == 503:
        return orjson.dumps({"error": "The database service is unavailable"})
    return orjson.dumps({"error": "Too Many Requests" if status == 429 else "Internal Server Error"})


def invalid(message: str) -> Response:
    return json_response(
        {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request", "message": message}, 400
    )


class Guard:
    """Optional x-api-key; a per-minute window (50 anonymous, 500 keyed) with ratelimit-* headers."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.window = FixedWindow(sandbox.config.stacks_per_minute_anonymous, 60.0)

    def __call__(self, request: Request, sb: Sandbox) -> Response | None:
        key = request.headers.get("x-api-key")
        if key is not None and key != sb.config.stacks_api_key:
            return json_response({"error": "Forbidden", "message": "Invalid API key"}, 403)
        limit = sb.config.stacks_per_minute_keyed if key else sb.config.stacks_per_minute_anonymous
        ident = f"key:{key}" if key else f"ip:{request.client.host if request.client else '-'}"
        now = time.time()
        allowed, remaining, reset = self.window.acquire(ident, now, limit)
        headers = {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(int(reset)),
            "x-ratelimit-cost-stacks": "1",
            "x-ratelimit-limit-stacks-minute": str(limit),
            "x-ratelimit-remaining-stacks-minute": str(remaining),
        }
        request.state.ratelimit = headers
        if allowed:
            return None
        headers["retry-after"] = str(max(1, math.ceil(reset - now)))
        return json_response({"error": "Too Many Requests", "message": "API rate limit exceeded"}, 429, headers)


def _limit_offset(request: Request) -> tuple[int, int] | Response:
    q = request.query_params
    try:
        limit, offset = int(q.get("limit", DEFAULT_LIMIT)), int(q.get("offset", 0))
    except ValueError:
        return invalid("querystring/limit must be integer")
    if limit > MAX_LIMIT:
        return invalid(f"querystring/limit must be <= {MAX_LIMIT}")
    if limit < 1 or offset < 0:
        return invalid("querystring/limit must be >= 1" if limit < 1 else "querystring/offset must be >= 0")
    return limit, offset


def _keys(request: Request, sb: Sandbox, paging_deeper: bool) -> tuple[str, list] | Response:
    principal = request.path_params["principal"]
    if not PRINCIPAL.match(principal):
        return invalid(f"params/principal invalid principal: {principal}")
    arrivals_key = f"stacks:{principal}"
    if paging_deeper and sb.faults["stacks"].shift_rows:  # new blocks land while the client pages
        sb.arrivals[arrivals_key] += sb.faults["stacks"].shift_rows
    return principal, data.history(sb.config.seed, principal, sb.config.scale, sb.arrivals[arrivals_key])


def _tx(sb: Sandbox, principal: str, key) -> dict:
    others = data.wallets(sb.config.seed, sb.config.stacks_wallets)
    return data.transaction(sb.config.seed, principal, key, others, sb.revisions["stacks"])


def _flows(principal: str, tx: dict) -> tuple[int, int]:
    amount = int(tx.get("token_transfer", {}).get("amount", 0))
    sent = (amount + int(tx["fee_rate"])) if tx["sender_address"] == principal else 0
    received = amount if tx.get("token_transfer", {}).get("recipient_address") == principal else 0
    return sent, received


def _headers(request: Request, deprecated: bool) -> dict[str, str]:
    headers = dict(request.state.ratelimit)
    if deprecated:
        headers["Warning"] = DEPRECATED
    return headers


def _offset_page(request: Request, sb: Sandbox) -> tuple[int, int, str, list] | Response:
    """v1 and v2: validated limit/offset and the principal's keys (new arrivals land when paging deeper)."""
    paging = _limit_offset(request)
    if isinstance(paging, Response):
        return paging
    limit, offset = paging
    found = _keys(request, sb, offset > 0)
    if isinstance(found, Response):
        return found
    return (limit, offset, *found)


async def v1_transactions(request: Request, sb: Sandbox) -> Response:
    page = _offset_page(request, sb)
    if isinstance(page, Response):
        return page
    limit, offset, principal, keys = page
    results = [_tx(sb, principal, k) for k in keys[offset : offset + limit]]
    return json_response(
        {"limit": limit, "offset": offset, "total": len(keys), "results": results}, headers=_headers(request, True)
    )


async def v2_transactions(request: Request, sb: Sandbox) -> Response:
    page = _offset_page(request, sb)
    if isinstance(page, Response):
        return page
    limit, offset, principal, keys = page
    results = []
    for k in keys[offset : offset + limit]:
        tx = _tx(sb, principal, k)
        sent, received = _flows(principal, tx)
        transfer = {"transfer": 1 if "token_transfer" in tx else 0, "mint": 0, "burn": 0}
        results.append(
            {
                "tx": tx,
                "stx_sent": str(sent),
                "stx_received": str(received),
                "events": {
                    "stx": transfer,
                    "ft": {"transfer": 0, "mint": 0, "burn": 0},
                    "nft": {"transfer": 0, "mint": 0, "burn": 0},
                },
            }
        )
    cursor = lambda i: ":".join(map(str, keys[i])) if 0 <= i < len(keys) else None  # noqa: E731
    return json_response(
        {
            "limit": limit,
            "offset": offset,
            "total": len(keys),
            "next_cursor": cursor(offset + limit),
            "prev_cursor": cursor(offset - limit) if offset else None,
            "cursor": cursor(offset),
            "results": results,
        },
        headers=_headers(request, True),
    )


def _summary(tx: dict) -> dict:
    """v3's TransactionSummary: nested sender, block and bitcoin_block objects, and the type's own payload."""
    summary = {
        "tx_id": tx["tx_id"],
        "sender": {"address": tx["sender_address"], "nonce": tx["nonce"]},
        "sponsor": None,
        "fee_rate": tx["fee_rate"],
        "block": {
            "height": tx["block_height"],
            "hash": tx["block_hash"],
            "index_hash": tx["block_hash"],
            "time": tx["block_time"],
            "tx_index": tx["tx_index"],
        },
        "bitcoin_block": {"height": tx["burn_block_height"], "time": tx["burn_block_time"]},
        "status": tx["tx_status"],
        "type": tx["tx_type"],
    }
    if "token_transfer" in tx:
        t = tx["token_transfer"]
        summary["token_transfer"] = {
            "recipient": t["recipient_address"],
            "amount": t["amount"],
            "memo": {"hex": t["memo"], "repr": "0x"},
        }
    elif "contract_call" in tx:
        c = tx["contract_call"]
        summary["contract_call"] = {"contract_id": c["contract_id"], "function_name": c["function_name"]}
    else:
        summary["smart_contract"] = {
            "clarity_version": tx["smart_contract"]["clarity_version"],
            "contract_id": tx["smart_contract"]["contract_id"],
        }
    return summary


async def v3_transactions(request: Request, sb: Sandbox) -> Response:
    q = request.query_params
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return invalid("querystring/limit must be integer")
    if not 1 <= limit <= MAX_LIMIT:
        return invalid(
            f"querystring/limit must be <= {MAX_LIMIT}" if limit > MAX_LIMIT else "querystring/limit must be >= 1"
        )
    raw_cursor = q.get("cursor")
    if raw_cursor is not None and not CURSOR.match(raw_cursor):
        return invalid('querystring/cursor must match pattern "^[0-9]+:[0-9]+:[0-9]+$"')
    found = _keys(request, sb, raw_cursor is not None)
    if isinstance(found, Response):
        return found
    principal, keys = found
    start = 0
    if raw_cursor:
        c = tuple(int(x) for x in raw_cursor.split(":"))
        if c[1:] == (0, 0) and c not in keys:  # H:0:0 matching no row widens to the whole block H
            c = (c[0], 2**31, 10**9)
        start = next((i for i, k in enumerate(keys) if k <= c), len(keys))  # inclusive: filter is <= cursor
    page = keys[start : start + limit]
    results = []
    for k in page:
        tx = _tx(sb, principal, k)
        sent, received = _flows(principal, tx)
        results.append(
            {
                "transaction": _summary(tx),
                "involvement": "sender" if tx["sender_address"] == principal else "affected",
                "balance_changes": {"stx": {"sent": str(sent), "received": str(received), "net": str(received - sent)}},
                "affected_balances": {"stx": sent > 0 or received > 0, "ft": False, "nft": False},
            }
        )
    as_cursor = lambda i: ":".join(map(str, keys[i])) if 0 <= i < len(keys) else None  # noqa: E731
    cursor = {
        "next": as_cursor(start + limit),
        "previous": as_cursor(start - limit) if start else None,
        "current": as_cursor(start),
    }
    return json_response(
        {"total": len(keys), "limit": limit, "cursor": cursor, "results": results}, headers=_headers(request, False)
    )


async def block_by_time(request: Request, sb: Sandbox) -> Response:
    """/extended/v2/blocks/by-block-time/{timestamp}: the newest block mined at or before the timestamp."""
    try:
        moment = int(request.path_params["timestamp"])
    except ValueError:
        return invalid("params/timestamp must be integer")
    if moment < 0:
        return invalid("params/timestamp must be >= 0")
    head = data.head_height(max(sb.arrivals.values(), default=0))
    height = min(head, data.height_at(datetime.fromtimestamp(moment, UTC)))
    if height < 0:
        return json_response({"error": "cannot find block by timestamp", "message": str(moment)}, 404)
    bt = data.block_time(height)
    iso = bt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    block_hash = "0x" + hex_id(32, "block", height)
    body = {
        "canonical": True,
        "height": height,
        "hash": block_hash,
        "block_time": int(bt.timestamp()),
        "block_time_iso": iso,
        "tenure_height": height,
        "index_block_hash": block_hash,
        "parent_block_hash": "0x" + hex_id(32, "block", height - 1),
        "parent_index_block_hash": "0x" + hex_id(32, "block", height - 1),
        "burn_block_time": int(bt.timestamp()),
        "burn_block_time_iso": iso,
        "burn_block_hash": "0x" + hex_id(32, "burn", height),
        "burn_block_height": 666_050 + height // 3,
        "miner_txid": "0x" + hex_id(32, "miner", height),
        "tx_count": 1,
        "execution_cost_read_count": 0,
        "execution_cost_read_length": 0,
        "execution_cost_runtime": 0,
        "execution_cost_write_count": 0,
        "execution_cost_write_length": 0,
    }
    return json_response(body, headers=_headers(request, False))


def routes(sandbox: Sandbox) -> list[Route]:
    guard = Guard(sandbox)

    def route(path: str, name: str, handler) -> Route:
        return Route(
            f"/stacks/extended{path}",
            api_endpoint("stacks", name, handler, sandbox, guard, error_body),
            methods=["GET"],
        )

    return [
        route("/v1/address/{principal}/transactions", "v1/address/transactions", v1_transactions),
        route("/v2/addresses/{principal}/transactions", "v2/addresses/transactions", v2_transactions),
        route("/v3/principals/{principal}/transactions", "v3/principals/transactions", v3_transactions),
        route("/v2/blocks/by-block-time/{timestamp}", "v2/blocks/by-block-time", block_by_time),
    ]
