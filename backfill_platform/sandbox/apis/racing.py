"""The Racing API: Basic auth, 2 requests/s, FastAPI-style 422s; courses, regions, racecards, results."""

from __future__ import annotations

import base64
import time
from datetime import date, datetime, timedelta
from functools import lru_cache

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.core import Sandbox, SlidingWindow, api_endpoint, json_response
from backfill_platform.sandbox.generators import racing as data

MAX_RESULTS_SPAN = 365
# A second account on the Standard plan (same password): results yes, Pro racecards 401, as the docs describe.
STANDARD_SUFFIX = "-standard"
PRO_ONLY = "This endpoint requires the Pro plan. Upgrade your subscription to access it."
HISTORICAL_ONLY = "Results older than 12 months require the historical results add-on."


def error_body(status: int) -> bytes:
    return orjson.dumps({"detail": {429: "Too Many Requests", 404: "Not found"}.get(status, "Internal Server Error")})


def invalid(*problems: tuple[str, str, str, object]) -> Response:
    """FastAPI's 422: one entry per problem (loc name, type, msg, input)."""
    detail = [{"type": t, "loc": ["query", name], "msg": msg, "input": value} for name, t, msg, value in problems]
    return json_response({"detail": detail}, 422)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def is_standard_plan(request: Request, sb: Sandbox) -> bool:
    standard = basic(sb.config.racing_username + STANDARD_SUFFIX, sb.config.racing_password)
    return request.headers.get("authorization") == standard


def make_guard(sandbox: Sandbox):
    window = SlidingWindow(max(1, int(sandbox.config.racing_per_second)), 1.0)
    pro = basic(sandbox.config.racing_username, sandbox.config.racing_password)

    def guard(request: Request, sb: Sandbox) -> Response | None:
        if request.headers.get("authorization") != pro and not is_standard_plan(request, sb):
            return json_response({"detail": "Not authenticated"}, 401, {"WWW-Authenticate": "Basic"})
        allowed, _ = window.acquire(sb.config.racing_username, time.monotonic())
        return None if allowed else json_response({"detail": "Too Many Requests"}, 429)

    return guard


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return invalid(
            (name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", raw)
        )
    if value < lo:
        return invalid((name, "greater_than_equal", f"Input should be greater than or equal to {lo}", raw))
    if value > hi:
        return invalid((name, "less_than_equal", f"Input should be less than or equal to {hi}", raw))
    return value


def _date(request: Request, name: str, default: date) -> date | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return invalid(
            (name, "date_from_datetime_parsing", "Input should be a valid date in the format YYYY-MM-DD", raw)
        )


def _regions(request: Request, name: str) -> set[str] | Response:
    """Region codes as sent (repeated keys); an unknown code is a 422 naming the known ones."""
    wanted = set(request.query_params.getlist(name))
    known = {code for code, _ in data.REGIONS}
    unknown = sorted(wanted - known)
    if unknown:
        msg = f"Invalid region code {unknown[0]!r}; valid codes are listed by /v1/courses/regions"
        return invalid((name, "value_error", msg, unknown[0]))
    return wanted


def _page(rows: list[dict], key: str, skip: int, limit: int, request: Request) -> Response:
    query = [[k, v] for k, v in request.query_params.multi_items()]
    return json_response(
        {key: rows[skip : skip + limit], "total": len(rows), "limit": limit, "skip": skip, "query": query}
    )


async def courses(request: Request, sb: Sandbox) -> Response:
    wanted = set(request.query_params.getlist("region_codes"))
    rows = [c.__dict__ for c in data.courses(sb.config.seed) if not wanted or c.region_code in wanted]
    return json_response({"courses": rows, "total": len(rows)})


async def regions(request: Request, sb: Sandbox) -> Response:
    return json_response([{"region": name, "region_code": code} for code, name in data.REGIONS])


async def racecards_pro(request: Request, sb: Sandbox) -> Response:
    today = datetime.now().date()
    day = _date(request, "date", today)
    if isinstance(day, Response):
        return day
    limit = _int(request, "limit", 500, 1, 500)
    if isinstance(limit, Response):
        return limit
    skip = _int(request, "skip", 0, 0, 500)
    if isinstance(skip, Response):
        return skip
    if is_standard_plan(request, sb):
        return json_response({"detail": PRO_ONLY}, 401)
    if day < data.RACECARDS_FROM:
        return invalid(("date", "value_error", "Historical racecards are available from 2023-01-23", str(day)))
    rows = [] if day > today + timedelta(days=7) else data.racecards_for_day(sb.config.seed, day, sb.config.scale)
    regions_ = _regions(request, "region_codes")
    if isinstance(regions_, Response):
        return regions_
    course_ids = set(request.query_params.getlist("course_ids"))
    rows = [
        r
        for r in rows
        if (not regions_ or r["region"].lower() in regions_) and (not course_ids or r["course_id"] in course_ids)
    ]
    return _page(rows, "racecards", skip, limit, request)


async def results(request: Request, sb: Sandbox) -> Response:
    today = datetime.now().date()
    start = _date(request, "start_date", today - timedelta(days=MAX_RESULTS_SPAN))
    if isinstance(start, Response):
        return start
    end = _date(request, "end_date", today)
    if isinstance(end, Response):
        return end
    limit = _int(request, "limit", 50, 1, 100)
    if isinstance(limit, Response):
        return limit
    skip = _int(request, "skip", 0, 0, 20_000)
    if isinstance(skip, Response):
        return skip
    if end < start:
        return invalid(("end_date", "value_error", "end_date must be on or after start_date", str(end)))
    if (end - start).days > MAX_RESULTS_SPAN:
        return invalid(("end_date", "value_error", "Date range cannot exceed 365 days", str(end)))
    if is_standard_plan(request, sb) and start < today - timedelta(days=MAX_RESULTS_SPAN):
        return json_response({"detail": HISTORICAL_ONLY}, 401)
    regions_ = _regions(request, "region")
    if isinstance(regions_, Response):
        return regions_
    course_ids = set(request.query_params.getlist("course"))
    # Results exist once a day has been raced; across dates the order is not documented: newest day first here.
    days = []
    day = min(end, today - timedelta(days=1))
    while day >= start:
        days.append(day)
        day -= timedelta(days=1)
    seed, revision, scale = sb.config.seed, sb.revisions["racing"], sb.config.scale
    if not course_ids and not regions_:  # unfiltered: build only the days the page covers (counts are cheap)
        return _unfiltered_page(days, seed, revision, scale, skip, limit, request)
    rows = [r for d in days for r in _results_of(seed, d, revision, scale)]
    if course_ids:
        rows = [r for r in rows if r["course_id"] in course_ids]
    else:
        rows = [r for r in rows if r["region"].lower() in regions_]
    return _page(rows, "results", skip, limit, request)


def _unfiltered_page(
    days: list[date], seed: int, revision: int, scale: float, skip: int, limit: int, request: Request
) -> Response:
    """The same page as slicing every day's results, building only the days it overlaps (a year's first page
    would otherwise build the whole year)."""
    counts = [data.races_on(seed, d, scale) for d in days]
    rows: list[dict] = []
    offset = 0
    for d, n in zip(days, counts, strict=True):
        if offset + n > skip and offset < skip + limit:
            day_rows = _results_of(seed, d, revision, scale)
            rows.extend(day_rows[max(0, skip - offset) : skip + limit - offset])
        offset += n
    query = [[k, v] for k, v in request.query_params.multi_items()]
    return json_response({"results": rows, "total": sum(counts), "limit": limit, "skip": skip, "query": query})


@lru_cache(maxsize=1024)
def _results_of(seed: int, day: date, revision: int, scale: float) -> tuple[dict, ...]:
    """A day's results, built once: every page of a long range reads the same days again."""
    return tuple(data.results_for_day(seed, day, revision, scale))


def routes(sandbox: Sandbox) -> list[Route]:
    guard = make_guard(sandbox)

    def route(path: str, name: str, handler) -> Route:
        return Route(
            f"/racing/v1{path}", api_endpoint("racing", name, handler, sandbox, guard, error_body), methods=["GET"]
        )

    return [
        route("/courses", "courses", courses),
        route("/courses/regions", "courses/regions", regions),
        route("/racecards/pro", "racecards/pro", racecards_pro),
        route("/results", "results", results),
    ]
