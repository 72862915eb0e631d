"""What every simulated API shares: configuration, request counters, server-side rate limits and faults."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

JSON = "application/json"
# Arrival times kept per API: every window of a test or benchmark, bounded for a long-running demo sandbox.
ARRIVALS_KEPT = 100_000


@dataclass
class SandboxConfig:
    """Knobs of the simulators; every API reads its own section. Defaults mirror the real services."""

    seed: int = 7
    scale: float = 1.0
    # Credentials the simulators accept (the real services issue these).
    blaze_partner_key: str = "sandbox-partner-key"
    blaze_api_key: str = "sandbox-store-key"
    racing_username: str = "sandbox"
    racing_password: str = "sandbox-password"
    alpaca_key_id: str = "sandbox-key-id"
    alpaca_secret_key: str = "sandbox-secret"
    stacks_api_key: str = "sandbox-hiro-key"
    # Rate limits as the real services enforce them.
    blaze_calls_per_5min: int = 10_000
    racing_per_second: float = 2.0
    alpaca_per_minute: int = 200
    stacks_per_minute_anonymous: int = 50
    stacks_per_minute_keyed: int = 500
    canton_bucket_tokens: int = 200
    canton_tokens_per_second: float = 200.0
    # Seconds after start during which Scan answers "history not yet loaded" (503).
    canton_startup_503_s: float = 0.0
    # False: Scan serves no /v0/backfilling/* (SV-internal endpoints), only the public /v2/updates, as most do.
    canton_backfilling: bool = True
    # Size of the simulated worlds.
    alpaca_symbols: int = 500
    stacks_wallets: int = 20

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes | str) -> SandboxConfig:
        return cls(**orjson.loads(raw))


class Stats:
    """Requests, 429s, faults and statuses per API and per route, and when each request arrived, for tests and
    benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts: dict[str, Counter[str]] = defaultdict(Counter)
            self.routes: dict[str, Counter[str]] = defaultdict(Counter)
            self.arrived: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=ARRIVALS_KEPT))

    def arrive(self, api: str, route: str) -> None:
        """A request reached the API (after any injected latency): counted, and its wall-clock time kept."""
        with self._lock:
            self.counts[api]["requests"] += 1
            self.routes[f"{api} {route}"]["requests"] += 1
            self.arrived[api].append(time.time())

    def arrivals(self, api: str) -> list[float]:
        """Epoch seconds at which the API's requests arrived, oldest first."""
        with self._lock:
            return sorted(self.arrived.get(api, ()))

    def busiest(self, api: str, period_s: float) -> int:
        """The most requests that arrived within any `period_s` seconds: what a sliding-window limit counts."""
        times, first, most = self.arrivals(api), 0, 0
        for last, t in enumerate(times):
            while times[first] <= t - period_s:
                first += 1
            most = max(most, last - first + 1)
        return most

    def add(self, api: str, route: str, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[api][key] += n
            self.routes[f"{api} {route}"][key] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "apis": {api: dict(c) for api, c in self.counts.items()},
                "routes": {route: dict(c) for route, c in self.routes.items()},
            }


class SlidingWindow:
    """At most `limit` calls in any `period` seconds (Blaze's 10,000 calls per 5 minutes)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.calls: dict[str, deque[float]] = defaultdict(deque)

    def acquire(self, key: str, now: float) -> tuple[bool, float]:
        calls = self.calls[key]
        while calls and calls[0] <= now - self.period:
            calls.popleft()
        if len(calls) >= self.limit:
            return False, calls[0] + self.period - now
        calls.append(now)
        return True, 0.0


class FixedWindow:
    """`limit` calls per clock-aligned window (Alpaca's and Hiro's per-minute counters)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.windows: dict[str, tuple[int, int]] = {}

    def acquire(self, key: str, now: float, limit: int | None = None) -> tuple[bool, int, float]:
        """(allowed, remaining, epoch second the window resets)."""
        limit = limit or self.limit
        window = int(now // self.period)
        start, used = self.windows.get(key, (window, 0))
        if start != window:
            used = 0
        reset = (window + 1) * self.period
        if used >= limit:
            self.windows[key] = (window, used)
            return False, 0, reset
        self.windows[key] = (window, used + 1)
        return True, limit - used - 1, reset


class TokenBucket:
    """A token bucket (Envoy's local rate limiter in front of Scan; The Racing API's per-second pacing)."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.state: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, now: float) -> tuple[bool, float]:
        tokens, last = self.state.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.state[key] = (tokens, now)
            return False, (1 - tokens) / self.rate
        self.state[key] = (tokens - 1, now)
        return True, 0.0


FAULT_KINDS = ("status", "slow", "slow_body", "drop", "truncated", "malformed")


@dataclass
class Fault:
    """One injected misbehaviour: a status, a slow answer, a body slow to come down after its headers (a large page on
    a slow link), a cut connection, half a body, or broken JSON."""

    kind: str
    status: int = 503
    seconds: float = 0.0
    route: str | None = None  # only requests to this route (path suffix); None = any route of the API
    times: int = 1  # scripted faults fire this many times
    after: int = 0  # let this many matching requests through first
    body: bytes | None = None
    headers: dict[str, str] | None = None  # e.g. a Retry-After some gateways add


@dataclass
class FaultPlan:
    """Scripted faults (consumed in order) and per-request probabilities, per API."""

    scripted: list[Fault] = field(default_factory=list)
    probability: dict[str, float] = field(default_factory=dict)
    status_choices: tuple[int, ...] = (500, 502, 503)
    slow_seconds: float = 5.0
    shift_rows: int = 0  # rows that appear at the head while a client pages (offset shifting)
    # Network latency on the way in: each request of the API reaches it (and is counted) a uniformly drawn
    # (min_s, max_s) seconds late.
    jitter: tuple[float, float] | None = None
    # The API's own time to answer: each counted request waits a uniformly drawn (min_s, max_s) seconds before its
    # handler runs (a real API's query time, after its rate limiter has counted the call).
    delay: tuple[float, float] | None = None

    def draw(self, route: str, rng: random.Random) -> Fault | None:
        for fault in self.scripted:
            if fault.route is None or route.endswith(fault.route):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.scripted.remove(fault)
                return fault
        for kind, p in self.probability.items():
            if p > 0 and rng.random() < p:
                if kind == "status":
                    return Fault("status", status=rng.choice(self.status_choices))
                if kind == "429":
                    return Fault("status", status=429)
                return Fault(kind, seconds=self.slow_seconds)
        return None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultPlan:
        scripted = [Fault(**{**f, "body": f["body"].encode()} if f.get("body") else f) for f in raw.get("scripted", [])]
        return cls(
            scripted=scripted,
            probability=dict(raw.get("probability", {})),
            status_choices=tuple(raw.get("status_choices", (500, 502, 503))),
            slow_seconds=float(raw.get("slow_seconds", 5.0)),
            shift_rows=int(raw.get("shift_rows", 0)),
            jitter=_seconds_range(raw, "jitter"),
            delay=_seconds_range(raw, "delay"),
        )


def _seconds_range(raw: dict[str, Any], name: str) -> tuple[float, float] | None:
    if not raw.get(name):
        return None
    low, high = (float(x) for x in raw[name])
    if not 0 <= low <= high:
        raise ValueError(f"{name} {raw[name]!r} is not [min_s, max_s] with 0 <= min_s <= max_s")
    return (low, high)


class BrokenResponse(Response):
    """Announces a full body, then sends part of it (or none) and ends: the client sees a cut connection."""

    def __init__(self, content: bytes, fraction: float) -> None:
        super().__init__(content, media_type=JSON)
        self.fraction = fraction

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: int(len(self.body) * self.fraction)]})


class SlowBodyResponse(Response):
    """Sends the status line and headers at once, and the body `seconds` later."""

    def __init__(self, content: bytes, status: int, seconds: float) -> None:
        super().__init__(content, status_code=status, media_type=JSON)
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await asyncio.sleep(self.seconds)
        await send({"type": "http.response.body", "body": self.body})


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def encode_token(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def decode_token(token: str) -> str:
    return base64.b64decode(token.encode(), validate=True).decode()


class Sandbox:
    """State shared by the five simulated APIs: config, clock, counters, limiters, fault plans, revisions."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self.stats = Stats()
        self.faults: dict[str, FaultPlan] = defaultdict(FaultPlan)
        self.rng = random.Random(config.seed)
        # Late changes: revision N of a source's data has N rounds of voids/amendments applied.
        self.revisions: dict[str, int] = defaultdict(int)
        # Rows that arrived at the head while a client paged (per API and key), for offset-shift simulation.
        self.arrivals: Counter[str] = Counter()
        self.lock = asyncio.Lock()

    def uptime(self) -> float:
        return time.monotonic() - self.started


Handler = Callable[[Request, Sandbox], Awaitable[Response]]
Guard = Callable[[Request, Sandbox], Response | None]


def api_endpoint(
    api: str,
    route: str,
    handler: Handler,
    sandbox: Sandbox,
    guard: Guard,
    error_body: Callable[[int], bytes],
    error_media: str = JSON,
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with what every request of an API goes through: latency, count, auth and limit (guard),
    faults."""

    async def endpoint(request: Request) -> Response:
        jitter = sandbox.faults[api].jitter
        if jitter is not None:  # the request is still on its way: the API sees (and counts) it only after this
            await asyncio.sleep(sandbox.rng.uniform(*jitter))
        sandbox.stats.arrive(api, route)
        refused = guard(request, sandbox)
        if refused is not None:
            sandbox.stats.add(api, route, str(refused.status_code))  # a refusal is counted once, under its status
            return refused
        delay = sandbox.faults[api].delay
        if delay is not None:  # counted: the API now takes its time to answer
            await asyncio.sleep(sandbox.rng.uniform(*delay))
        fault = sandbox.faults[api].draw(request.url.path, sandbox.rng)
        if fault is not None:
            sandbox.stats.add(api, route, f"fault_{fault.kind}")
            if fault.kind == "status":
                sandbox.stats.add(api, route, str(fault.status))
                body = fault.body if fault.body is not None else error_body(fault.status)
                return Response(body, status_code=fault.status, media_type=error_media, headers=fault.headers)
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
        response = await handler(request, sandbox)
        if fault is not None and fault.kind == "slow_body":
            sandbox.stats.add(api, route, str(response.status_code))
            return SlowBodyResponse(bytes(response.body), response.status_code, fault.seconds)
        if fault is not None and fault.kind in ("drop", "truncated", "malformed"):
            # Starlette types Response.body as bytes | memoryview; the handlers here always render bytes.
            body = bytes(response.body)
            if fault.kind == "malformed":
                return raw_json(body[: max(1, len(body) // 2)] + b"<html>")
            return BrokenResponse(body, 0.0 if fault.kind == "drop" else 0.5)
        sandbox.stats.add(api, route, str(response.status_code))
        return response

    return endpoint
