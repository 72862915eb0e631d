"""The one HTTP path against the real sandbox on loopback: retries, 429 hints, fail-fast errors, secrets, metrics."""

from __future__ import annotations

import email.utils
import logging
import re
import socket
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import AlpacaApi, BlazeApi, CantonApi, RacingApi
from backfill_platform.resources.http import ApiError
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sources import load, named
from backfill_platform.summary import failure_line
from backfill_platform_tests.sources.helpers import drop_schemas

CFG = SandboxConfig()
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "use_budget": False}
BLAZE_Q = {"startDate": "03/01/2024", "endDate": "03/01/2024", "limit": 100}
TX = "/api/v1/partner/transactions"


def blaze(sandbox, **kw) -> BlazeApi:
    args = {"partner_key": CFG.blaze_partner_key, "api_key": CFG.blaze_api_key, **FAST, **kw}
    return BlazeApi(base_url=f"{sandbox.origin}/blaze", rate="7500/5m", **args)


def canton(sandbox, **kw) -> CantonApi:
    return CantonApi(base_url=f"{sandbox.origin}/canton", rate="100/s", **{**FAST, **kw})


def test_429_without_headers_backs_off_and_succeeds(sandbox) -> None:
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 429, "times": 2}]})
    session = blaze(sandbox).session()
    page = session.get(TX, BLAZE_Q)
    assert page["values"]
    m = session.metrics.snapshot()
    assert (m["calls"], m["retries"], m["http_429"]) == (3, 2, 2)
    assert sandbox.stats()["apis"]["blaze"]["requests"] == 3


@pytest.mark.parametrize("retry_after", ["1", "http-date"])
def test_429_with_retry_after_waits_that_long(sandbox, retry_after: str) -> None:
    if retry_after == "http-date":
        retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)  # second precision: waits 1-2 s
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 429, "headers": {"Retry-After": retry_after}}]})
    session = blaze(sandbox, backoff_initial_s=5.0).session()  # a plain backoff would wait 5 s, the hint 1-2 s
    started = time.monotonic()
    assert session.get(TX, BLAZE_Q)["values"]
    waited = time.monotonic() - started
    m = session.metrics.snapshot()
    assert m["http_429"] == 1 and 0.9 <= m["retry_wait_s"] <= 2.2 and waited < 4


def test_rate_limit_reset_header_is_honoured(sandbox) -> None:
    reset = str(int(time.time()) + 2)
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 429, "headers": {"X-RateLimit-Reset": reset}}]})
    session = blaze(sandbox, backoff_initial_s=5.0).session()
    assert session.get(TX, BLAZE_Q)["values"]
    assert 0.5 <= session.metrics.snapshot()["retry_wait_s"] <= 2.2


def test_5xx_burst_timeouts_and_resets_are_survived(sandbox) -> None:
    sandbox.faults(
        "canton",
        {
            "scripted": [
                {"kind": "status", "status": 503, "times": 3},
                {"kind": "slow", "seconds": 3},
                {"kind": "drop"},
                {"kind": "truncated"},
                {"kind": "malformed"},
            ]
        },
    )
    session = canton(sandbox, timeout_s=1.0).session()
    page = session.post("/api/scan/v2/updates", {"page_size": 10})
    assert len(page["transactions"]) == 10
    m = session.metrics.snapshot()
    assert m["calls"] == 8 and m["retries"] == 7


def test_gives_up_after_max_attempts_with_one_clear_line(sandbox) -> None:
    sandbox.faults("canton", {"probability": {"status": 1.0}, "status_choices": [502]})
    with pytest.raises(ApiError) as err:
        canton(sandbox, max_attempts=3).session().post("/api/scan/v2/updates", {"page_size": 10})
    assert str(err.value).startswith("canton /api/scan/v2/updates: gave up after 3 attempts: HTTP 502")
    assert "\n" not in str(err.value)
    assert sandbox.stats()["apis"]["canton"]["requests"] == 3


@pytest.mark.parametrize(
    ("make", "route", "params", "status"),
    [
        (
            lambda sb: AlpacaApi(
                base_url=f"{sb.origin}/alpaca", rate="200/min", key_id="k", secret_key="bad-pass-xyz", **FAST
            ),
            "/v2/stocks/bars",
            {"symbols": "AAPL", "timeframe": "1Day"},
            403,
        ),
        (lambda sb: blaze(sb, api_key="wrong-store-key"), TX, BLAZE_Q, 401),
        (lambda sb: blaze(sb), TX, {"startDate": "03/01/2024", "endDate": "03/20/2024"}, 400),
        (
            lambda sb: RacingApi(
                base_url=f"{sb.origin}/racing", rate="2/s", username="sandbox", password="bad-pass-xyz", **FAST
            ),
            "/v1/courses",
            None,
            401,
        ),
        (
            lambda sb: RacingApi(
                base_url=f"{sb.origin}/racing",
                rate="2/s",
                username=CFG.racing_username,
                password=CFG.racing_password,
                **FAST,
            ),
            "/v1/results",
            {"limit": 500},
            422,
        ),
    ],
)
def test_client_errors_fail_fast_without_secrets(sandbox, make, route, params, status) -> None:
    resource = make(sandbox)
    with pytest.raises(ApiError) as err:
        resource.session().get(route, params)
    text = str(err.value)
    assert err.value.status == status and f"HTTP {status}" in text and route in text
    for secret in ("wrong-store-key", "bad-pass-xyz", CFG.blaze_partner_key, CFG.racing_password):
        assert secret not in text and secret not in repr(resource)
    assert sum(sandbox.stats()["apis"].get(resource.API, {}).get("requests", 0) for _ in [0]) == 1


def test_budget_keeps_the_sandbox_free_of_429s(sandbox, db_url) -> None:
    """Racing allows 2 calls per sliding second; a 2/s budget makes 7 calls with none refused."""
    time.sleep(1.1)  # earlier tests' unbudgeted calls must leave the simulator's sliding second first
    session = RacingApi(
        base_url=f"{sandbox.origin}/racing",
        rate="2/s",
        username=CFG.racing_username,
        password=CFG.racing_password,
        backoff_initial_s=0.05,
    ).session()
    for _ in range(7):
        session.get("/v1/courses/regions")
    stats = sandbox.stats()["apis"]["racing"]
    assert stats["requests"] == 7 and "429" not in stats
    assert session.metrics.snapshot()["budget_wait_s"] >= 2.0  # 7 calls at 2/s cannot all go at once


def test_a_slot_is_free_once_the_headers_arrive_not_after_the_body(sandbox, db_url) -> None:
    """The server has counted a call by the time its headers arrive: a body that takes 1 s to come down (a large page
    on a slow link) must not hold the rate budget's slot for that second."""
    sandbox.faults("racing", {"scripted": [{"kind": "slow_body", "seconds": 1.0}]})
    session = RacingApi(
        base_url=f"{sandbox.origin}/racing",
        rate="2/s",
        username=CFG.racing_username,
        password=CFG.racing_password,
    ).session()
    started = time.monotonic()
    assert session.get("/v1/courses/regions")  # the whole body, decoded
    assert time.monotonic() - started >= 1.0
    held = session.metrics.snapshot()["slot_held_s"]
    assert held < 0.5, f"the slot was held {held:.2f} s: it was released after the body, not at the headers"
    assert sandbox.stats()["routes"]["racing courses/regions"]["fault_slow_body"] == 1


def test_bad_base_url_is_a_configuration_error() -> None:
    from backfill_platform.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="BACKFILL_CANTON_BASE_URL"):
        CantonApi(base_url="scan.sv-1.example", rate="10/s", use_budget=False).session()


def http_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "backfill_platform.http" and r.levelno == logging.WARNING]


def test_each_retry_is_one_warning_that_names_the_attempt_and_the_status(sandbox, caplog) -> None:
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 503}]})  # one 503, then the real 200
    caplog.set_level(logging.WARNING, logger="backfill_platform.http")
    session = blaze(sandbox, max_attempts=4).session()
    assert session.get(TX, BLAZE_Q)["values"]
    records = http_warnings(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert message.startswith(f"blaze {TX}: attempt 1 of 4 failed (HTTP 503"), message
    assert re.search(r"\), retrying in \d+\.\d\d s$", message), message
    assert "\n" not in message
    for secret in (CFG.blaze_partner_key, CFG.blaze_api_key):
        assert secret not in message


BLAZE_ASSETS = list(named("blaze", load()).assets)


def test_retries_show_in_the_runs_own_log(sandbox, dagster_home: Path, db_url: str) -> None:
    """dagster.yaml lists backfill_platform.http as a managed logger: the warning is an event of the run."""
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 503}]})
    resources = {"blaze": blaze(sandbox), "io_manager": PostgresIOManager(database_url=drop_schemas(db_url, "blaze"))}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert "backfill_platform.http" in instance.managed_python_loggers
        result = dg.materialize(BLAZE_ASSETS, resources=resources, partition_key="2024-03-02", instance=instance)
        assert result.success
        logged = [e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert [m for m in logged if f"blaze {TX}: attempt 1 of 8 failed (HTTP 503" in m], logged


def test_a_run_that_gives_up_reports_the_innermost_error(db_url: str) -> None:
    """The ApiError is raised while the IO manager writes the output; the summary shows it, not Dagster's wrapper."""
    with socket.socket() as closed:  # bound, never listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        api = BlazeApi(
            base_url=f"http://127.0.0.1:{port}/blaze",
            partner_key=CFG.blaze_partner_key,
            api_key=CFG.blaze_api_key,
            max_attempts=2,
            backoff_initial_s=0.01,
            backoff_max_s=0.02,
            use_budget=False,
        )
        resources = {"blaze": api, "io_manager": PostgresIOManager(database_url=drop_schemas(db_url, "blaze"))}
        result = dg.materialize(BLAZE_ASSETS, resources=resources, partition_key="2024-03-02", raise_on_error=False)
    assert not result.success
    line = failure_line(result.all_events)
    assert line is not None and line.startswith(f"blaze {TX}: gave up after 2 attempts: connection failed"), line
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('blaze.transactions')").fetchone() == (None,)
