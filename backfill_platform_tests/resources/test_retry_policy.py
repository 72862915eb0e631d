"""Retries fit the failure: only an API's declared warm-up answer is waited out long; a broken answer is not.

Against the real sandbox on loopback, with tiny backoffs. Scan declares 503 "has not yet loaded its updates history"
as its warm-up answer (the sandbox's own Canton 503 body); malformed JSON, a plain 503 and wrong-shaped pages keep the
ordinary limits (8 attempts / 300 s by default).
"""

from __future__ import annotations

import logging
import time

import pytest

from backfill_platform.resources.apis import BlazeApi, CantonApi
from backfill_platform.resources.http import ApiError, WarmupRule
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sources import load, named
from backfill_platform.sources.canton import settings
from backfill_platform.sources.canton.client import decode_page

ROUTE = settings.UPDATES_ROUTE
BODY = {"page_size": 10}
FORGET_IT = 1000  # scripted "forever": far more times than any limit here
# Backoffs capped at 20 ms: a test's waits stay well under a second however many attempts it makes.
TINY = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02, "use_budget": False}
TIMEOUT_503 = '{"error":"The server is taking too long to respond to the request at /api/scan/v2/updates"}'


def canton(sandbox, **kw) -> CantonApi:
    return CantonApi(base_url=f"{sandbox.origin}/canton", rate="100/s", **{**TINY, **kw})


def updates_stats(sandbox) -> dict[str, int]:
    return sandbox.stats()["routes"].get("canton v2/updates", {})


def test_scan_declares_its_warmup_answer_and_the_source_keeps_ordinary_limits() -> None:
    scan = named("canton", load({}))
    resource = scan.source.resource(scan.config)
    assert (resource.max_attempts, resource.max_retry_wait_s) == (8, 300.0)
    assert resource.warmup_rule() == WarmupRule(
        503, "has not yet loaded its updates history", settings.WARMUP_MAX_ATTEMPTS, settings.WARMUP_MAX_WAIT_S
    )
    from backfill_platform.sandbox.apis.canton import NOT_LOADED

    rule = resource.warmup_rule()
    assert rule is not None and rule.matches(503, NOT_LOADED)
    assert not rule.matches(500, NOT_LOADED) and not rule.matches(503, TIMEOUT_503)
    blaze = BlazeApi(partner_key="p", api_key="k")
    assert blaze.warmup_rule() is None  # an API that declares none retries everything by the ordinary limits


def test_warmup_503_is_waited_out_beyond_the_ordinary_limit(sandbox, caplog) -> None:
    """20 "not yet loaded" answers, more than twice max_attempts=8: waited out, then the page arrives."""
    sandbox.faults("canton", {"scripted": [{"kind": "status", "status": 503, "times": 20}]})
    caplog.set_level(logging.WARNING, logger="backfill_platform.http")
    session = canton(sandbox).session()
    started = time.monotonic()
    page = session.post(ROUTE, BODY)
    elapsed = time.monotonic() - started
    assert len(page["transactions"]) == 10
    stats = updates_stats(sandbox)
    assert (stats["requests"], stats["503"], stats["200"]) == (21, 20, 1)
    m = session.metrics.snapshot()
    assert (m["calls"], m["retries"]) == (21, 20)
    assert elapsed < 3.0, elapsed
    messages = [r.getMessage() for r in caplog.records if r.name == "backfill_platform.http"]
    assert len(messages) == 20
    assert messages[0].startswith(f"canton {ROUTE}: warm-up attempt 1 of 40 failed (HTTP 503"), messages[0]
    assert messages[-1].startswith(f"canton {ROUTE}: warm-up attempt 20 of 40 failed (HTTP 503"), messages[-1]
    print(f"\nwarm-up: {stats['requests']} attempts (20 warm-up 503s, then 200) in {elapsed:.2f} s")


def test_warmup_patience_has_its_own_bound(sandbox) -> None:
    sandbox.faults("canton", {"scripted": [{"kind": "status", "status": 503, "times": FORGET_IT}]})
    with pytest.raises(ApiError) as err:
        canton(sandbox, warmup_max_attempts=12).session().post(ROUTE, BODY)
    assert str(err.value).startswith(
        f"canton {ROUTE}: gave up after 12 attempts: HTTP 503 "
        '{"error":"This scan instance has not yet loaded its updates history.'
    ), str(err.value)
    assert updates_stats(sandbox)["requests"] == 12


def test_warmup_patience_is_also_bounded_in_time(sandbox) -> None:
    sandbox.faults("canton", {"scripted": [{"kind": "status", "status": 503, "times": FORGET_IT}]})
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"gave up after \d+ attempts: HTTP 503"):
        canton(sandbox, warmup_max_attempts=FORGET_IT, warmup_max_wait_s=0.5).session().post(ROUTE, BODY)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5, elapsed


def test_malformed_json_forever_fails_after_the_ordinary_limit_quickly(sandbox) -> None:
    sandbox.faults("canton", {"scripted": [{"kind": "malformed", "times": FORGET_IT}]})
    started = time.monotonic()
    with pytest.raises(ApiError) as err:
        canton(sandbox).session().post(ROUTE, BODY, decode=decode_page)
    elapsed = time.monotonic() - started
    text = str(err.value)
    assert text.startswith(f"canton {ROUTE}: gave up after 8 attempts: malformed JSON in a "), text
    assert text.endswith("-byte answer") and "\n" not in text
    stats = updates_stats(sandbox)
    assert (stats["requests"], stats["fault_malformed"]) == (8, 8)
    assert elapsed < 1.5, elapsed
    print(f"\nmalformed forever: {stats['requests']} attempts in {elapsed:.2f} s: {text}")


def test_plain_503_without_the_warmup_text_fails_after_the_ordinary_limit(sandbox) -> None:
    fault = {"kind": "status", "status": 503, "times": FORGET_IT, "body": TIMEOUT_503}
    sandbox.faults("canton", {"scripted": [fault]})
    started = time.monotonic()
    with pytest.raises(ApiError) as err:
        canton(sandbox).session().post(ROUTE, BODY)
    elapsed = time.monotonic() - started
    text = str(err.value)
    assert text.startswith(f"canton {ROUTE}: gave up after 8 attempts: HTTP 503 " + TIMEOUT_503[:40]), text
    assert err.value.status == 503 and "\n" not in text
    stats = updates_stats(sandbox)
    assert (stats["requests"], stats["503"]) == (8, 8)
    assert elapsed < 1.5, elapsed
    print(f"\nplain 503 forever: {stats['requests']} attempts in {elapsed:.2f} s: {text}")


def test_other_5xx_keep_the_ordinary_limit(sandbox) -> None:
    sandbox.faults("canton", {"probability": {"status": 1.0}, "status_choices": [500, 502, 504]})
    with pytest.raises(ApiError, match=rf"^canton {ROUTE}: gave up after 8 attempts: HTTP 50[024]"):
        canton(sandbox).session().post(ROUTE, BODY)
    assert updates_stats(sandbox)["requests"] == 8


def test_a_warmup_does_not_use_up_the_allowance_for_a_broken_answer(sandbox) -> None:
    """12 warm-up answers, then broken JSON forever: the broken answers still get exactly their 8 attempts."""
    scripted = [{"kind": "status", "status": 503, "times": 12}, {"kind": "malformed", "times": FORGET_IT}]
    sandbox.faults("canton", {"scripted": scripted})
    started = time.monotonic()
    with pytest.raises(ApiError, match=rf"^canton {ROUTE}: gave up after 20 attempts: malformed JSON"):
        canton(sandbox).session().post(ROUTE, BODY)
    elapsed = time.monotonic() - started
    stats = updates_stats(sandbox)
    assert (stats["requests"], stats["503"], stats["fault_malformed"]) == (20, 12, 8)
    assert elapsed < 2.0, elapsed


def test_ordinary_failures_are_bounded_in_time_too(sandbox) -> None:
    sandbox.faults("canton", {"scripted": [{"kind": "malformed", "times": FORGET_IT}]})
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"gave up after \d+ attempts: malformed JSON"):
        canton(sandbox, max_attempts=FORGET_IT, max_retry_wait_s=0.5).session().post(ROUTE, BODY)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5, elapsed


def test_a_page_of_the_wrong_shape_fails_at_once(sandbox) -> None:
    fault = {"kind": "status", "status": 200, "times": FORGET_IT, "body": '{"updates": []}', "route": ROUTE}
    sandbox.faults("canton", {"scripted": [fault]})
    with pytest.raises(ApiError) as err:
        canton(sandbox).session().post(ROUTE, BODY, decode=decode_page)
    assert str(err.value) == f"canton {ROUTE}: malformed page: Object missing required field `transactions`"
    assert updates_stats(sandbox)["requests"] == 1


def test_an_api_without_a_warmup_rule_treats_that_503_as_ordinary(sandbox) -> None:
    """The rule is the API's declaration, not a guess from the text: Blaze declares none."""
    not_loaded = '{"error":"This scan instance has not yet loaded its updates history."}'
    fault = {"kind": "status", "status": 503, "times": FORGET_IT, "body": not_loaded}
    sandbox.faults("blaze", {"scripted": [fault]})
    cfg = SandboxConfig()
    api = BlazeApi(
        base_url=f"{sandbox.origin}/blaze",
        rate="7500/5m",
        partner_key=cfg.blaze_partner_key,
        api_key=cfg.blaze_api_key,
        max_attempts=3,
        **TINY,
    )
    query = {"startDate": "03/01/2024", "endDate": "03/01/2024", "limit": 100}
    with pytest.raises(ApiError, match=r"gave up after 3 attempts: HTTP 503"):
        api.session().get("/api/v1/partner/transactions", query)
    assert sandbox.stats()["apis"]["blaze"]["requests"] == 3
