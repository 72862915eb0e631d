"""Splice Scan: POST /api/scan/v2/updates (ascending cursor) and the SV backfilling endpoints."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.core import Sandbox, TokenBucket, api_endpoint, json_response, raw_json
from backfill_platform.sandbox.generators import canton as data

MAX_PAGE = 1000
NOT_LOADED = "This scan instance has not yet loaded its updates history. Wait a short time and retry."


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def error_body(status: int) -> bytes:
    if status == 429:
        return b"local_rate_limited"  # Envoy's local rate limiter answers in plain text
    if status == 503:
        return orjson.dumps({"error": NOT_LOADED})
    return orjson.dumps({"error": "Internal error"})


def make_guard(sandbox: Sandbox):
    bucket = TokenBucket(sandbox.config.canton_bucket_tokens, sandbox.config.canton_tokens_per_second)

    def guard(request: Request, sb: Sandbox) -> Response | None:
        allowed, _ = bucket.acquire("ingress", time.monotonic())
        if not allowed:
            return Response(b"local_rate_limited", status_code=429, media_type="text/plain")
        if sb.uptime() < sb.config.canton_startup_503_s and "/backfilling/" not in request.url.path:
            return error(503, NOT_LOADED)
        return None

    return guard


async def _body(request: Request) -> dict | Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error(400, "The request content was malformed: invalid JSON")
    return body if isinstance(body, dict) else error(400, "The request content was malformed: expected an object")


def _page_size(value: object, name: str = "page_size") -> int | Response:
    if not isinstance(value, int) or isinstance(value, bool):
        return error(400, f"The request content was malformed: {name} must be an integer")
    if value < 1:
        return error(400, "Limit must be at least 1.")
    if value > MAX_PAGE:
        return error(400, f"Exceeded limit maximum ({value} > {MAX_PAGE}).")
    return value


def _time(value: object, name: str) -> str | Response:
    try:
        return data.iso_z(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return error(400, f"The request content was malformed: {name} is not an ISO-8601 date-time")


async def updates_v2(request: Request, sb: Sandbox) -> Response:
    body = await _body(request)
    if isinstance(body, Response):
        return body
    size = _page_size(body.get("page_size"))
    if isinstance(size, Response):
        return size
    after = None
    if body.get("after") is not None:
        a = body["after"]
        if not isinstance(a, dict) or not isinstance(a.get("after_migration_id"), int):
            return error(400, "The request content was malformed: after.after_migration_id must be an integer")
        record_time = _time(a.get("after_record_time"), "after.after_record_time")
        if isinstance(record_time, Response):
            return record_time
        after = (a["after_migration_id"], record_time)
    items = data.updates_after(sb.config.seed, sb.config.scale, after, size, datetime.now(UTC))
    return raw_json(b'{"transactions":[' + b",".join(items) + b"]}")


async def migration_info(request: Request, sb: Sandbox) -> Response:
    body = await _body(request)
    if isinstance(body, Response):
        return body
    m = data.migration(body.get("migration_id", -1))
    if m is None:
        return error(404, f"No data for migration {body.get('migration_id')}")
    end = m.end or datetime.now(UTC)
    first = data.updates_after(sb.config.seed, sb.config.scale, (m.migration_id, data.iso_z(m.start)), 1, end)
    before = data.updates_before(sb.config.seed, sb.config.scale, m.migration_id, data.iso_z(end), None, 1)
    info: dict = {
        "record_time_range": [
            {
                "synchronizer_id": data.SYNCHRONIZER,
                "min": orjson.loads(first[0])["record_time"] if first else data.iso_z(m.start),
                "max": before[0]["record_time"] if before else data.iso_z(end),
            }
        ],
        "complete": True,
        "import_updates_complete": True,
    }
    if m.migration_id > 0:
        info["previous_migration_id"] = m.migration_id - 1
    return json_response(info)


async def updates_before(request: Request, sb: Sandbox) -> Response:
    body = await _body(request)
    if isinstance(body, Response):
        return body
    count = _page_size(body.get("count"), "count")
    if isinstance(count, Response):
        return count
    before = _time(body.get("before"), "before")
    if isinstance(before, Response):
        return before
    at_or_after = _time(body["at_or_after"], "at_or_after") if body.get("at_or_after") else None
    if isinstance(at_or_after, Response):
        return at_or_after
    if not isinstance(body.get("migration_id"), int):
        return error(400, "The request content was malformed: migration_id must be an integer")
    items = data.updates_before(sb.config.seed, sb.config.scale, body["migration_id"], before, at_or_after, count)
    return json_response({"transactions": items})


def routes(sandbox: Sandbox) -> list[Route]:
    guard = make_guard(sandbox)

    def route(path: str, name: str, handler) -> Route:
        endpoint = api_endpoint("canton", name, handler, sandbox, guard, error_body)
        return Route(f"/canton/api/scan{path}", endpoint, methods=["POST"])

    public = [route("/v2/updates", "v2/updates", updates_v2)]
    if not sandbox.config.canton_backfilling:  # unrouted: Starlette's own 404, as from a Scan without them
        return public
    return [
        *public,
        route("/v0/backfilling/migration-info", "backfilling/migration-info", migration_info),
        route("/v0/backfilling/updates-before", "backfilling/updates-before", updates_before),
    ]
