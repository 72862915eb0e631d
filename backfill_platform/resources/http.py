"""THE HTTP path of every source: httpx with keep-alive, the shared request budget, retries, metrics.

Sources never sleep, retry or count by themselves: they call `ApiSession.request_json()` and page with
`pagination.py`. Credentials live only in request headers; errors name the API, route and status, never a secret.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import dagster as dg
import httpx
import msgspec
import orjson
import tenacity
from pydantic import Field, PrivateAttr

from backfill_platform import config
from backfill_platform.database import database_url
from backfill_platform.errors import ConfigurationError
from backfill_platform.resources.budget import RateBudget, Window, parse_rate

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A reset header above this is an epoch timestamp (Alpaca, Hiro); below, a number of seconds.
EPOCH_THRESHOLD = 1_000_000_000

# Each retry is one WARNING here; dagster.yaml lists this logger under python_logs.managed_python_loggers, so inside a
# run it lands in the run's own log as well. Messages carry the API, route, status or error: never headers or bodies.
log = logging.getLogger("backfill_platform.http")


class ApiError(Exception):
    """An API answered in a way a retry cannot fix (or retries ran out): one line, no secrets."""

    def __init__(self, api: str, route: str, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(f"{api} {route}: {message}")
        self.api, self.route, self.status = api, route, status
        self.body = body  # the refusal's body (bounded), for a source that explains its API's error format


class RetryableError(Exception):
    """A 429/5xx, a timeout, a cut connection or a malformed body: worth another attempt. `warmup`: the answer matched
    the API's declared warm-up rule, so it draws on that rule's allowance instead of the ordinary one."""

    def __init__(
        self, message: str, wait_hint_s: float | None = None, status: int | None = None, warmup: bool = False
    ) -> None:
        super().__init__(message)
        self.wait_hint_s, self.status, self.warmup = wait_hint_s, status, warmup


@dataclass(frozen=True)
class WarmupRule:
    """An API's documented "not ready yet" answer (a status whose body contains a known text): waited out with its own,
    larger allowance. Every other retryable failure keeps the ordinary max_attempts / max_retry_wait_s."""

    status: int
    body_contains: str
    max_attempts: int
    max_wait_s: float

    def matches(self, status: int, body: str) -> bool:
        return status == self.status and self.body_contains in body


@dataclass
class _Allowance:
    """What one request may spend on one kind of failure, and has spent: failed attempts, and seconds (those attempts
    plus the waits after them)."""

    max_attempts: int
    max_s: float
    attempts: int = 0
    spent_s: float = 0.0

    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts or self.spent_s >= self.max_s


class _Allowances:
    """One request's retry accounting: warm-up answers draw on the warm-up rule's allowance, everything else on the
    ordinary one, so a long warm-up neither uses up nor extends the patience for a broken answer."""

    def __init__(self, max_attempts: int, max_s: float, warmup: WarmupRule | None) -> None:
        self.ordinary = _Allowance(max_attempts, max_s)
        self.warmup = _Allowance(warmup.max_attempts, warmup.max_wait_s) if warmup is not None else self.ordinary
        self.current = self.ordinary
        self.warming_up = False  # the last failure matched the warm-up rule
        self.attempt_started: float | None = None

    def charge(self, state: tenacity.RetryCallState) -> bool:
        """tenacity's retry predicate (the first callback after each attempt): retry RetryableError only, and charge
        the attempt to its allowance."""
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, RetryableError):
            return False
        self.warming_up = exc.warmup
        self.current = self.warmup if exc.warmup else self.ordinary
        started = self.attempt_started if self.attempt_started is not None else state.start_time
        self.current.attempts += 1
        self.current.spent_s += max(0.0, (state.outcome_timestamp or time.monotonic()) - started)
        return True

    def slept(self, seconds: float) -> None:
        self.current.spent_s += seconds
        self.attempt_started = time.monotonic() + seconds


@dataclass
class HttpMetrics:
    """What one resource's calls cost; assets put these in materialization metadata."""

    calls: int = 0
    retries: int = 0
    http_429: int = 0
    budget_wait_s: float = 0.0
    retry_wait_s: float = 0.0
    bytes: int = 0
    # Seconds from sending to the answer's headers, summed: how long calls held their budget slots past the period.
    slot_held_s: float = 0.0
    # Seconds, summed, that slots were stamped before the answer: the part of the round trip the budget took back.
    slot_head_start_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, float]:
        with self._lock:  # asdict() would deep-copy the lock
            data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        data["budget_wait_s"] = round(data["budget_wait_s"], 3)
        data["retry_wait_s"] = round(data["retry_wait_s"], 3)
        data["slot_held_s"] = round(data["slot_held_s"], 3)
        data["slot_head_start_s"] = round(data["slot_head_start_s"], 3)
        return data

    def since(self, before: Mapping[str, float]) -> dict[str, float]:
        now = self.snapshot()
        return {k: round(now[k] - before.get(k, 0), 3) for k in now}


def share(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` as whole numbers that add up to it (largest remainders first), e.g.
    one API window's calls over the days it served."""
    if not weights:
        return []
    if sum(weights) == 0:
        weights = [1] * len(weights)
    exact = [total * w / sum(weights) for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: exact[i] - parts[i], reverse=True)[: total - sum(parts)]:
        parts[i] += 1
    return parts


def wait_hint(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or HTTP date), else a reset header."""
    retry_after = response.headers.get("retry-after")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        raw = response.headers.get(name)
        if raw:
            try:
                value = float(raw)
            except ValueError:
                continue
            return max(0.0, value - time.time()) if value > EPOCH_THRESHOLD else max(0.0, value)
    return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ApiSession:
    """One API's live client: a pooled httpx.Client, its budget, its retry policy and its metrics."""

    def __init__(
        self,
        api: str,
        base_url: str,
        headers: Mapping[str, str],
        budget: RateBudget | None,
        timeout_s: float = 30.0,
        max_attempts: int = 8,
        max_retry_wait_s: float = 300.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        warmup: WarmupRule | None = None,
    ) -> None:
        self.api, self.budget = api, budget
        self.max_attempts, self.max_retry_wait_s, self.warmup = max_attempts, max_retry_wait_s, warmup
        self.metrics = HttpMetrics()
        self._scope = threading.local()
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    def _count(self, **deltas: float) -> None:
        self.metrics.add(**deltas)
        scope = getattr(self._scope, "metrics", None)
        if scope is not None:
            scope.add(**deltas)

    @contextmanager
    def track(self) -> Iterator[HttpMetrics]:
        """Also count this thread's calls on their own: one partition's share of a run whose threads fetch several
        partitions at once (the session's own metrics keep counting everything)."""
        previous = getattr(self._scope, "metrics", None)
        self._scope.metrics = scope = HttpMetrics()
        try:
            yield scope
        finally:
            self._scope.metrics = previous

    def close(self) -> None:
        self.client.close()
        if self.budget is not None:
            self.budget.close()

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, state: tenacity.RetryCallState, allowances: _Allowances) -> float:
        """The server's hint when it gave one, else exponential backoff with jitter over the failures of this kind
        (warm-up or ordinary); never past what is left of that kind's allowance."""
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.wait_hint_s if isinstance(exc, RetryableError) else None
        allowance = allowances.current
        if hint is not None:
            wait = hint + 0.05
        else:  # tenacity's wait_exponential_jitter, counted per allowance
            wait = self.backoff_initial_s * 2 ** (allowance.attempts - 1) + random.uniform(0, 1.0)
            wait = min(wait, self.backoff_max_s)
        return max(0.0, min(wait, allowance.max_s - allowance.spent_s))

    def _before_sleep(self, route: str, state: tenacity.RetryCallState, allowances: _Allowances) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        self._count(retries=1, retry_wait_s=wait)
        exc = state.outcome.exception() if state.outcome else None
        allowance = allowances.current
        log.warning(
            "%s %s: %s %d of %d failed (%s), retrying in %.2f s",
            self.api,
            route,
            "warm-up attempt" if allowances.warming_up else "attempt",
            allowance.attempts,
            allowance.max_attempts,
            exc if exc is not None else "no answer",
            wait,
        )
        allowances.slept(wait)

    def _attempt(self, method: str, route: str, params: Any, json: Any, decode: Callable[[bytes], Any]) -> Any:
        budget = self.budget
        claim = budget.acquire() if budget is not None else None
        if claim is not None:
            self._count(budget_wait_s=claim.waited_s)
        self._count(calls=1)
        sent = time.monotonic()
        try:
            request = self.client.build_request(method, route, params=params, json=json)
            # Streamed: the status line and headers prove the call has reached the server, so its budget slot is
            # released then, not after the body has come down (on a real network a large page's body takes longer
            # than its headers; every millisecond a slot is held past its period is rate never used).
            response = self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"connection failed ({type(exc).__name__})") from None
        finally:  # answered or failed, the server has counted the call by now: its budget slot counts from here
            if budget is not None and claim is not None:
                head_s = budget.release(claim, route)
                self._count(slot_held_s=time.monotonic() - sent, slot_head_start_s=head_s)
        try:
            response.read()
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timed out reading the body ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"connection failed reading the body ({type(exc).__name__})") from None
        finally:
            response.close()
        self._count(bytes=len(response.content))
        if response.status_code in RETRYABLE_STATUS:
            if response.status_code == 429:
                self._count(http_429=1)
            raise RetryableError(
                f"HTTP {response.status_code} {_short(response.text, 120)}",
                wait_hint(response),
                response.status_code,
                warmup=self.warmup is not None and self.warmup.matches(response.status_code, response.text),
            )
        if response.status_code >= 400:
            raise ApiError(
                self.api,
                route,
                f"HTTP {response.status_code}: {_short(response.text)}",
                response.status_code,
                response.text[:4000],
            )
        try:
            return decode(response.content)
        except msgspec.ValidationError as exc:  # well-formed JSON of the wrong shape: retrying will not change it
            raise ApiError(self.api, route, f"malformed page: {exc}") from None
        except (orjson.JSONDecodeError, msgspec.DecodeError):  # cut short or garbled on the way: ask again
            raise RetryableError(f"malformed JSON in a {len(response.content)}-byte answer") from None

    def request_json(
        self,
        method: str,
        route: str,
        params: Any = None,
        json: Any = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        """One logical request: budgeted attempts, retried on 429/5xx/timeouts/resets/malformed bodies.

        `decode` turns the body into values (a typed msgspec decoder skips what a source does not need); a body that
        is not JSON is retried, JSON of the wrong shape (msgspec.ValidationError) fails at once. Failures get
        `max_attempts` attempts and `max_retry_wait_s` seconds; answers matching the session's warm-up rule are counted
        apart, against the rule's own (larger) limits.
        """
        allowances = _Allowances(self.max_attempts, self.max_retry_wait_s, self.warmup)
        retrying = tenacity.Retrying(
            stop=lambda state: allowances.current.exhausted(),
            retry=allowances.charge,
            wait=lambda state: self._wait(state, allowances),
            before_sleep=lambda state: self._before_sleep(route, state, allowances),
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, route, params, json, decode)
        except RetryableError as exc:
            raise ApiError(
                self.api, route, f"gave up after {self._attempts(retrying)} attempts: {exc}", exc.status
            ) from None

    @staticmethod
    def _attempts(retrying: tenacity.Retrying) -> int:
        return int(retrying.statistics.get("attempt_number", 0))

    def get(self, route: str, params: Any = None) -> Any:
        return self.request_json("GET", route, params=params)

    def post(self, route: str, json: Any = None, decode: Callable[[bytes], Any] = orjson.loads) -> Any:
        return self.request_json("POST", route, json=json, decode=decode)


class HttpApiResource(dg.ConfigurableResource):
    """Base of every API resource: where the API is, how fast it may be called, how patiently to retry.

    Subclasses add credentials (bound with dagster.EnvVar) and `auth_headers()`; `session()` builds the live client.
    """

    base_url: str = Field(
        default="",
        description="The API's origin as for the real service; empty: BACKFILL_<API>_BASE_URL, else the "
        "API's public origin. The client adds the documented paths.",
    )
    rate: str = Field(
        default="",
        description="Request budget shared by every process, e.g. '2/s' or '7500/5m'; "
        "empty: BACKFILL_<API>_RATE, else the API's default.",
    )
    timeout_s: float = Field(default=30.0, description="Per-request timeout in seconds.")
    max_attempts: int = Field(default=8, description="Attempts per request before failing.")
    max_retry_wait_s: float = Field(
        default=300.0, description="Cap on seconds spent on failed attempts and the waits between them."
    )
    warmup_max_attempts: int = Field(
        default=40,
        description="Attempts allowed for the API's declared warm-up answer (WARMUP_STATUS with WARMUP_BODY_CONTAINS "
        "in the body), counted apart from max_attempts; unused by APIs that declare none.",
    )
    warmup_max_wait_s: float = Field(
        default=1800.0, description="Cap on seconds spent waiting out the declared warm-up answer."
    )
    backoff_initial_s: float = Field(default=0.5, description="First backoff after a 5xx or a 429 without hints.")
    backoff_max_s: float = Field(default=30.0, description="Longest single backoff.")
    use_budget: bool = Field(default=True, description="Share the request budget through PostgreSQL.")

    _session: ApiSession | None = PrivateAttr(default=None)
    _scoped: dict[str, ApiSession] = PrivateAttr(default_factory=dict)

    API: ClassVar[str] = "api"  # the budget key and the name in errors
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_BASE_URL: ClassVar[str] = ""
    DEFAULT_RATE: ClassVar[str] = "10/s"
    # A documented "not ready yet" answer waited out with warmup_max_attempts / warmup_max_wait_s (None: no such rule).
    WARMUP_STATUS: ClassVar[int | None] = None
    WARMUP_BODY_CONTAINS: ClassVar[str] = ""

    def __repr_args__(self):  # pydantic repr: credentials never printed
        for name, value in super().__repr_args__():
            yield name, ("***" if name in self.SECRET_FIELDS and value else value)

    def auth_headers(self) -> dict[str, str]:
        return {}

    def resolved_base_url(self) -> str:
        """Read when the session starts, so the environment of the run (not of the import) decides."""
        return self.base_url or config.base_url(self.API, self.DEFAULT_BASE_URL)

    def default_rate(self) -> str:
        """The budget when neither `rate` nor BACKFILL_<API>_RATE is set (an API may tie it to its credentials)."""
        return self.DEFAULT_RATE

    def windows(self) -> tuple[Window, ...]:
        return parse_rate(self.rate or config.rate(self.API, self.default_rate()), config.source_var(self.API, "rate"))

    def route_rate(self, scope: str) -> str:
        """A budget of its own for one group of routes, for APIs whose limits are per endpoint ('' = the API's)."""
        return ""

    def session(self, scope: str = "") -> ApiSession:
        """The live client, built once per resource instance (one per run worker process). A `scope` whose
        `route_rate` is set gets its own client on its own budget (`<api>/<scope>`); otherwise the API's."""
        rate = self.route_rate(scope) if scope else ""
        if rate:
            if scope not in self._scoped:
                windows = parse_rate(rate, config.source_var(self.API, f"{scope}_rate"))
                self._scoped[scope] = self._new_session(f"{self.API}/{scope}", windows)
            return self._scoped[scope]
        if self._session is None:
            self._session = self._new_session(self.API, self.windows())
        return self._session

    def _new_session(self, budget_key: str, windows: tuple[Window, ...]) -> ApiSession:
        base_url = self.resolved_base_url()
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{config.source_var(self.API, 'base_url')}={base_url!r} is not an http(s) URL; "
                "set it to the API's origin, e.g. https://api.example.com"
            )
        strict = config.strict_budget(self.API)
        budget = RateBudget(database_url(), budget_key, windows, strict=strict) if self.use_budget else None
        return ApiSession(
            self.API,
            base_url,
            self.auth_headers(),
            budget,
            self.timeout_s,
            self.max_attempts,
            self.max_retry_wait_s,
            self.backoff_initial_s,
            self.backoff_max_s,
            self.warmup_rule(),
        )

    def warmup_rule(self) -> WarmupRule | None:
        if self.WARMUP_STATUS is None:
            return None
        return WarmupRule(
            self.WARMUP_STATUS, self.WARMUP_BODY_CONTAINS, self.warmup_max_attempts, self.warmup_max_wait_s
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        for scoped in self._scoped.values():
            scoped.close()
        self._scoped.clear()
