"""The one ASGI app: five simulated APIs under /<source>, and a control surface under /_sandbox for tests."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backfill_platform.sandbox.apis import alpaca, blaze, canton, racing, stacks
from backfill_platform.sandbox.core import FaultPlan, Sandbox, SandboxConfig, json_response
from backfill_platform.sandbox.env import base_urls, credentials, source_settings

API_MODULES = {"blaze": blaze, "canton": canton, "racing": racing, "alpaca": alpaca, "stacks": stacks}


def control_routes(sandbox: Sandbox) -> list[Route]:
    async def stats(request: Request) -> Response:
        return json_response(sandbox.stats.snapshot())

    async def reset(request: Request) -> Response:
        """Forget counters, faults and head arrivals (revisions stay: they are the data's state)."""
        sandbox.stats.reset()
        sandbox.faults.clear()
        sandbox.arrivals.clear()
        return json_response({"ok": True})

    async def faults(request: Request) -> Response:
        api = request.path_params["api"]
        if api not in API_MODULES:
            return json_response({"error": f"unknown api {api}"}, 404)
        sandbox.faults[api] = FaultPlan.from_dict(await request.json())
        return json_response({"ok": True})

    async def revision(request: Request) -> Response:
        api = request.path_params["api"]
        sandbox.revisions[api] = int((await request.json())["revision"])
        return json_response({"revision": sandbox.revisions[api]})

    async def arrivals(request: Request) -> Response:
        """When each request of an API arrived (epoch seconds) and, with ?window=<seconds>, the most that arrived
        within any window of that length: what the API's own sliding-window limit counts."""
        api = request.path_params["api"]
        window = float(request.query_params.get("window", "0") or 0)
        busiest = sandbox.stats.busiest(api, window) if window > 0 else None
        return json_response({"api": api, "arrivals": sandbox.stats.arrivals(api), "busiest": busiest})

    async def ping(request: Request) -> Response:
        """For the budget benchmark: counts arrivals per clock second, 429 above ?limit= in a second."""
        second = int(time.time())
        sandbox.stats.add("bench", "seconds", str(second))
        count = sandbox.stats.counts["bench"][str(second)]
        limit = int(request.query_params.get("limit", "0") or 0)
        return json_response({"second": second}, 429 if limit and count > limit else 200)

    async def prerender(request: Request) -> Response:
        """Render Scan days ahead, and each migration's first and last day that migration-info reads (benchmarks
        measure the platform, not the simulator's first rendering)."""
        from datetime import UTC, date, datetime, timedelta

        from backfill_platform.sandbox.generators import canton

        body = await request.json()
        if body.get("clear"):  # a sustained benchmark renders chunk by chunk: drop the days already served
            canton.day_updates.cache_clear()
        first = date.fromisoformat(body["start"])
        rendered = 0
        for n in range(int(body["days"])):
            for m in canton.MIGRATIONS:
                rendered += len(
                    canton.day_updates(
                        sandbox.config.seed, m.migration_id, first + timedelta(days=n), sandbox.config.scale
                    ).items
                )
        for m in canton.MIGRATIONS:
            for day in (m.start.date(), (m.end or datetime.now(UTC)).date()):
                canton.day_updates(sandbox.config.seed, m.migration_id, day, sandbox.config.scale)
        return json_response({"updates": rendered})

    async def config(request: Request) -> Response:
        return Response(sandbox.config.to_json(), media_type="application/json")

    async def environment(request: Request) -> Response:
        """What a process sets to use this sandbox (BACKFILL_SANDBOX_URL reads it at definitions load)."""
        origin = str(request.base_url).rstrip("/")
        return json_response({**base_urls(origin), **credentials(sandbox.config), **source_settings(sandbox.config)})

    return [
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/faults/{api}", faults, methods=["POST"]),
        Route("/_sandbox/revision/{api}", revision, methods=["POST"]),
        Route("/_sandbox/config", config, methods=["GET"]),
        Route("/_sandbox/env", environment, methods=["GET"]),
        Route("/_sandbox/arrivals/{api}", arrivals, methods=["GET"]),
        Route("/_bench/ping", ping, methods=["GET"]),
        Route("/_sandbox/prerender/canton", prerender, methods=["POST"]),
    ]


def build_app(config: SandboxConfig | None = None) -> Starlette:
    sandbox = Sandbox(config or SandboxConfig())
    routes = control_routes(sandbox)
    for module in API_MODULES.values():
        routes.extend(module.routes(sandbox))
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
