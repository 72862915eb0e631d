"""Alpaca Market Data v2: GET /v2/stocks/bars (many symbols, symbol-major pages, opaque page tokens)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.core import (
    FixedWindow,
    Sandbox,
    api_endpoint,
    decode_token,
    encode_token,
    json_response,
)
from backfill_platform.sandbox.generators import alpaca as data

MAX_LIMIT = 10_000
FEEDS = ("iex", "sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "all")


def error(status: int, code: int, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


def error_body(status: int) -> bytes:
    return orjson.dumps(
        {
            "code": status * 100_000 + 10_000,
            "message": "too many requests" if status == 429 else "internal server error",
        }
    )


class Guard:
    """APCA key headers, then the fixed per-minute window whose X-Ratelimit-* headers go on every answer."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.window = FixedWindow(sandbox.config.alpaca_per_minute, 60.0)
        self.last: dict[str, tuple[int, float]] = {}

    def __call__(self, request: Request, sb: Sandbox) -> Response | None:
        key = request.headers.get("apca-api-key-id")
        if (
            key is None
            or key != sb.config.alpaca_key_id
            or request.headers.get("apca-api-secret-key") != sb.config.alpaca_secret_key
        ):
            return error(403, 40310000, "forbidden")
        allowed, remaining, reset = self.window.acquire(key, time.time())
        headers = self.headers(remaining, reset, sb)
        request.state.ratelimit = headers
        return None if allowed else json_response({"code": 42910000, "message": "too many requests"}, 429, headers)

    @staticmethod
    def headers(remaining: int, reset: float, sb: Sandbox) -> dict[str, str]:
        return {
            "X-Ratelimit-Limit": str(sb.config.alpaca_per_minute),
            "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Reset": str(int(reset)),
        }


def _time(raw: str | None, name: str, default: datetime) -> datetime | Response:
    if raw is None:
        return default
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return error(400, 40010001, f"invalid {name}: {raw}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _params_digest(request: Request) -> str:
    items = sorted((k, v) for k, v in request.query_params.multi_items() if k != "page_token")
    return hashlib.blake2b(repr(items).encode(), digest_size=6).hexdigest()


async def bars(request: Request, sb: Sandbox) -> Response:
    q = request.query_params
    headers = request.state.ratelimit
    if not q.get("symbols"):
        return error(400, 40010001, "missing symbols")
    symbols = sorted(set(s.strip() for s in q["symbols"].split(",") if s.strip()))
    bad = [s for s in symbols if not data.SYMBOL.match(s)]
    if bad:
        return error(400, 40010001, f"invalid symbol: {bad[0]}")
    timeframe = data.parse_timeframe(q.get("timeframe", ""))
    if timeframe is None:
        return error(400, 40010001, f"invalid timeframe: {q.get('timeframe', '')!r}")
    if q.get("feed", "iex") not in FEEDS:
        return error(400, 40010001, f"invalid feed: {q.get('feed')!r}")
    if q.get("adjustment", "raw") not in ADJUSTMENTS:
        return error(400, 40010001, f"invalid adjustment: {q.get('adjustment')!r}")
    now = datetime.now(UTC)
    start = _time(q.get("start"), "start", now.replace(hour=0, minute=0, second=0, microsecond=0))
    if isinstance(start, Response):
        return start
    end = _time(q.get("end"), "end", now)
    if isinstance(end, Response):
        return end
    try:
        limit = int(q.get("limit", "1000"))
    except ValueError:
        return error(400, 40010001, f"invalid limit: {q.get('limit')}")
    if not 1 <= limit <= MAX_LIMIT:
        return error(422, 42210000, f"invalid limit: must be between 1 and {MAX_LIMIT}")
    if end < start:
        return error(422, 42210000, "end should not be before start")
    resume: tuple[str, str] | None = None
    if q.get("page_token"):
        try:
            symbol, _letter, last_t, digest = decode_token(q["page_token"]).split("|")
        except ValueError:
            return error(400, 40010001, "invalid page_token")
        if digest != _params_digest(request):
            return error(400, 40010001, "page_token does not match the other parameters")
        resume = (symbol, last_t)
    known = set(data.universe(sb.config.alpaca_symbols))
    out: dict[str, list[dict]] = {}
    taken, last = 0, None
    for symbol in symbols:
        if symbol not in known or (resume and symbol < resume[0]):
            continue
        series = data.bars(sb.config.seed, symbol, start, end, timeframe)
        if resume and symbol == resume[0]:
            series = [b for b in series if b["t"] > resume[1]]
        chunk = series[: limit - taken]
        if chunk:
            out[symbol] = chunk
            taken += len(chunk)
            last = (symbol, chunk[-1]["t"])
        if taken >= limit:
            break
    token = None
    if taken >= limit and last is not None:
        token = encode_token(f"{last[0]}|{timeframe.letter}|{last[1]}|{_params_digest(request)}")
    return json_response({"bars": out, "next_page_token": token}, headers=headers)


def routes(sandbox: Sandbox) -> list[Route]:
    guard = Guard(sandbox)
    return [
        Route(
            "/alpaca/v2/stocks/bars",
            api_endpoint("alpaca", "stocks/bars", bars, sandbox, guard, error_body),
            methods=["GET"],
        )
    ]
