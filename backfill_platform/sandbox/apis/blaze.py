"""Blaze Partner API: GET /api/v1/partner/transactions (skip/limit over a ≤ 7-day window)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.core import Sandbox, SlidingWindow, api_endpoint, json_response
from backfill_platform.sandbox.generators import blaze as data

MAX_PAGE = 100
MAX_SPAN_DAYS = 7


def error(status: int, error_: str, message: str) -> Response:
    return json_response({"error": error_, "message": message, "status": status}, status)


def error_body(status: int) -> bytes:
    text = {429: ("Too Many Requests", "Rate limit exceeded")}.get(status, ("Internal Server Error", "Server error"))
    return orjson.dumps({"error": text[0], "message": text[1], "status": status})


def make_guard(sandbox: Sandbox):
    window = SlidingWindow(sandbox.config.blaze_calls_per_5min, 300.0)

    def guard(request: Request, sb: Sandbox) -> Response | None:
        partner = request.headers.get("partner_key") or request.headers.get("x-api-key")
        store = request.headers.get("authorization")
        if partner is None or partner != sb.config.blaze_partner_key:
            return error(401, "Unauthorized", "Invalid partner key")
        if store != sb.config.blaze_api_key:
            return error(401, "Unauthorized", "Invalid developer key")
        allowed, _ = window.acquire(partner, time.monotonic())
        return None if allowed else error(429, "Too Many Requests", "Rate limit exceeded")

    return guard


def _parse_date(text: str, name: str) -> date | Response:
    try:
        return datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        return error(400, "Invalid argument", f"Invalid {name} '{text}': dates must be in MM/dd/yyyy format")


def _int(request: Request, name: str, default: int) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return error(400, "Invalid argument", f"{name} must be an integer")
    return value if value >= 0 else error(400, "Invalid argument", f"{name} must not be negative")


async def transactions(request: Request, sb: Sandbox) -> Response:
    q = request.query_params
    today = datetime.now(data.SHOP_TZ).date()
    if "startDate" not in q and "endDate" not in q:
        start, end = today - timedelta(days=MAX_SPAN_DAYS), today
    else:
        start = _parse_date(q.get("startDate", ""), "startDate")
        if isinstance(start, Response):
            return start
        end = _parse_date(q.get("endDate", ""), "endDate")
        if isinstance(end, Response):
            return end
    if end < start:
        return error(400, "Invalid argument", "endDate must not be before startDate")
    if (end - start).days > MAX_SPAN_DAYS:
        return error(400, "Invalid argument", "Date range cannot exceed 7 days")
    skip = _int(request, "skip", 0)
    if isinstance(skip, Response):
        return skip
    limit = _int(request, "limit", MAX_PAGE)
    if isinstance(limit, Response):
        return limit
    limit = min(limit or MAX_PAGE, MAX_PAGE)  # silently capped, and the effective value is echoed
    rows: list[dict] = []
    day = start
    while day <= min(end, today):
        rows.extend(data.transactions_for_day(sb.config.seed, day, sb.revisions["blaze"], sb.config.scale))
        day += timedelta(days=1)
    shift = sb.faults["blaze"].shift_rows if skip > 0 else 0  # modified sales move rows under offset paging
    lo = max(0, skip - shift)
    return json_response({"values": rows[lo : lo + limit], "skip": skip, "limit": limit, "total": len(rows)})


def routes(sandbox: Sandbox) -> list[Route]:
    guard = make_guard(sandbox)
    return [
        Route(
            "/blaze/api/v1/partner/transactions",
            api_endpoint("blaze", "transactions", transactions, sandbox, guard, error_body),
            methods=["GET"],
        )
    ]
