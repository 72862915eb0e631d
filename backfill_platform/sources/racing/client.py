"""Typed iterators over the Racing API's pages (paging, validation, its errors in one line; no sleeps, no retries)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import date

import orjson

from backfill_platform.resources.http import ApiError, ApiSession
from backfill_platform.resources.pagination import skip_limit_pages
from backfill_platform.sources.racing import settings

PLAN_NEEDED = {
    settings.RACECARDS_ROUTE: "racecards need The Racing API's Pro plan (historical racecards from 2023-01-23); "
    "upgrade the plan, or leave racing/racecards and its tables out of the selection",
    settings.RESULTS_ROUTE: "results need the Standard plan or above, and results older than 12 months the Pro "
    "plan's historical add-on; upgrade, or set BACKFILL_RACING_START within the last 12 months",
}


def explain(exc: ApiError) -> ApiError:
    """The API's refusal in one line: a 401 names the plan the endpoint needs, a 422 quotes FastAPI's `detail`."""
    if exc.status == 401:
        need = PLAN_NEEDED.get(exc.route, "check BACKFILL_RACING_USERNAME and BACKFILL_RACING_PASSWORD")
        return ApiError(exc.api, exc.route, f"HTTP 401 Unauthorized: {need}", exc.status)
    if exc.status == 422:
        return ApiError(exc.api, exc.route, f"the API rejected the request (HTTP 422): {_detail(exc.body)}", 422)
    return exc


def _detail(body: str) -> str:
    try:
        detail = orjson.loads(body).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return " ".join(body.split())[:200]
    if isinstance(detail, list):
        parts = []
        for d in detail:
            loc = [str(p) for p in (d.get("loc") or []) if p != "query"]
            parts.append(f"{'.'.join(loc)}: {d.get('msg')} (got {d.get('input')!r})" if loc else str(d.get("msg")))
        return "; ".join(parts)
    return str(detail)


class TooDeep(Exception):
    """A range holds more races than `skip` (≤ 20,000) can page through."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


def deepest_skip(total: int, limit: int = settings.RESULTS_PAGE) -> int:
    return max(0, math.ceil(total / limit) - 1) * limit


class RacingClient:
    def __init__(self, session: ApiSession, regions: Sequence[str] = ()) -> None:
        self.session, self.region_codes = session, list(regions)

    def _get(self, route: str, params: dict | None = None) -> object:
        try:
            return self.session.get(route, params)
        except ApiError as exc:
            raise explain(exc) from None

    def _page(self, route: str, params: dict, key: str) -> dict:
        page = self._get(route, params)
        if not isinstance(page, dict) or not isinstance(page.get("total"), int):
            raise ApiError("racing", route, f"malformed page: expected {{{key}: [...], total: n}}")
        items = page.get(key) or []  # `results` may be null when nothing matches
        if not isinstance(items, list) or any(not isinstance(i, dict) or "race_id" not in i for i in items):
            raise ApiError("racing", route, f"malformed page: every item of {key} needs a race_id")
        return {**page, key: items}

    def courses(self) -> list[dict]:
        body = self._get(settings.COURSES_ROUTE)
        if not isinstance(body, dict) or not isinstance(body.get("courses"), list):
            raise ApiError("racing", settings.COURSES_ROUTE, "malformed answer: expected {courses: [...]}")
        return body["courses"]

    def regions(self) -> list[dict]:
        body = self._get(settings.REGIONS_ROUTE)
        if not isinstance(body, list):
            raise ApiError("racing", settings.REGIONS_ROUTE, "malformed answer: expected a list of regions")
        return body

    def results(self, first: date, last: date, totals: list[int]) -> Iterator[list[dict]]:
        """Races of first..last (≤ 365 days), 100 a page with `skip`, de-duplicated by race_id; `totals` is set to the
        API's `total` of the range (taken from the pages, no extra call)."""
        if (last - first).days + 1 > settings.RESULTS_MAX_DAYS:
            raise ValueError(f"a results range spans at most {settings.RESULTS_MAX_DAYS} days: {first}..{last}")
        params = {"start_date": first.isoformat(), "end_date": last.isoformat(), "region": self.region_codes}

        def fetch(skip: int, limit: int) -> dict:
            page = self._page(settings.RESULTS_ROUTE, {**params, "limit": limit, "skip": skip}, "results")
            totals[:] = [page["total"]]
            if skip == 0 and deepest_skip(page["total"], limit) > settings.RESULTS_MAX_SKIP:
                raise TooDeep(page["total"])
            return page

        yield from skip_limit_pages(fetch, settings.RESULTS_PAGE, "results", lambda r: r["race_id"])

    def results_of(self, days: Sequence[date]) -> tuple[list[dict], int]:
        """Every race of consecutive `days` and the API's total for them; a range deeper than `skip` reaches is
        halved (its first page was spent finding out), down to one day."""
        totals: list[int] = []
        try:
            return [race for page in self.results(days[0], days[-1], totals) for race in page], totals[0]
        except TooDeep as deep:
            if len(days) == 1:
                raise ApiError(
                    "racing",
                    settings.RESULTS_ROUTE,
                    f"{days[0]} holds {deep.total:,} races, more than skip ≤ {settings.RESULTS_MAX_SKIP:,} pages "
                    "through; narrow BACKFILL_RACING_REGIONS",
                ) from None
            half = len(days) // 2
            first, first_total = self.results_of(days[:half])
            rest, rest_total = self.results_of(days[half:])
            return first + rest, first_total + rest_total

    def racecards(self, day: date) -> Iterator[list[dict]]:
        """Pro racecards of one day: one call (up to 500 races)."""
        params = {"date": day.isoformat(), "region_codes": self.region_codes}
        yield from skip_limit_pages(
            lambda skip, limit: self._page(
                settings.RACECARDS_ROUTE, {**params, "limit": limit, "skip": skip}, "racecards"
            ),
            settings.RACECARDS_PAGE,
            "racecards",
            lambda r: r["race_id"],
        )
