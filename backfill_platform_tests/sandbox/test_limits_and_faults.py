"""Server-side rate limits answer 429 like the real services; injected faults and counters behave."""

from __future__ import annotations

import httpx
import pytest

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import SandboxProcess
from backfill_platform_tests.sandbox.helpers import ALPACA, BLAZE, BLAZE_PATH, RACING, SCAN_UPDATES, get, post
from backfill_platform_tests.sandbox.test_stacks_simulator import WALLET

TINY = SandboxConfig(
    blaze_calls_per_5min=3,
    racing_per_second=2,
    alpaca_per_minute=3,
    stacks_per_minute_anonymous=2,
    canton_bucket_tokens=3,
    canton_tokens_per_second=0.01,
)
BLAZE_Q = {"startDate": "03/01/2024", "endDate": "03/01/2024"}


@pytest.fixture(scope="module")
def tiny() -> SandboxProcess:
    with SandboxProcess(TINY) as server:
        yield server


def test_blaze_sliding_window(tiny) -> None:
    codes = [get(tiny.origin, BLAZE_PATH, params=BLAZE_Q, headers=BLAZE).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = get(tiny.origin, BLAZE_PATH, params=BLAZE_Q, headers=BLAZE)
    assert r.json()["status"] == 429 and "retry-after" not in r.headers
    # each refusal is counted once (it used to be counted twice)
    assert httpx.get(f"{tiny.origin}/_sandbox/stats").json()["apis"]["blaze"]["429"] == 2


def test_racing_two_per_second(tiny) -> None:
    codes = [get(tiny.origin, "/racing/v1/courses/regions", headers=RACING).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_alpaca_fixed_minute_window_with_headers(tiny) -> None:
    params = {"symbols": "AAPL", "timeframe": "1Day", "start": "2024-01-02T00:00:00Z", "end": "2024-01-05T00:00:00Z"}
    responses = [get(tiny.origin, "/alpaca/v2/stocks/bars", params=params, headers=ALPACA) for _ in range(4)]
    assert [r.status_code for r in responses][-1] == 429
    assert [r.headers["X-Ratelimit-Remaining"] for r in responses] in (
        ["2", "1", "0", "0"],
        ["2", "1", "0", "2"],
        ["2", "1", "2", "1"],
        ["2", "2", "1", "0"],
    )
    assert "retry-after" not in responses[-1].headers


def test_stacks_minute_window_sends_retry_after(tiny) -> None:
    path = f"/stacks/extended/v1/address/{WALLET}/transactions"
    responses = [get(tiny.origin, path, params={"limit": 1}) for _ in range(3)]
    last = responses[-1]
    if last.status_code == 200:  # the minute rolled over between calls; the next one must be limited
        last = [get(tiny.origin, path, params={"limit": 1}) for _ in range(3)][-1]
    assert last.status_code == 429 and 1 <= int(last.headers["retry-after"]) <= 60
    assert last.headers["ratelimit-remaining"] == "0"


def test_scan_ingress_token_bucket(tiny) -> None:
    codes = [post(tiny.origin, SCAN_UPDATES, json={"page_size": 1}) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[-1].text == "local_rate_limited" and "retry-after" not in codes[-1].headers


def test_scripted_faults_then_recovery_and_counters(sandbox) -> None:
    sandbox.faults(
        "canton", {"scripted": [{"kind": "status", "status": 503, "times": 2}, {"kind": "status", "status": 429}]}
    )
    codes = [post(sandbox.origin, SCAN_UPDATES, json={"page_size": 5}).status_code for _ in range(4)]
    assert codes == [503, 503, 429, 200]
    stats = sandbox.stats()
    route = stats["routes"]["canton v2/updates"]
    assert route["requests"] == 4 and route["429"] == 1 and route["503"] == 2 and route["fault_status"] == 3
    sandbox.reset()
    assert sandbox.stats()["apis"] == {}


def test_broken_responses(sandbox) -> None:
    sandbox.faults("canton", {"scripted": [{"kind": "drop"}, {"kind": "truncated"}, {"kind": "malformed"}]})
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            post(sandbox.origin, SCAN_UPDATES, json={"page_size": 5})
    malformed = post(sandbox.origin, SCAN_UPDATES, json={"page_size": 5})
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()


def test_slow_responses_exceed_a_client_timeout(sandbox) -> None:
    sandbox.faults("blaze", {"scripted": [{"kind": "slow", "seconds": 2}]})
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sandbox.origin + BLAZE_PATH, params=BLAZE_Q, headers=BLAZE, timeout=0.5)


def test_probabilistic_faults(sandbox) -> None:
    sandbox.faults("blaze", {"probability": {"status": 0.5}})
    codes = [get(sandbox.origin, BLAZE_PATH, params=BLAZE_Q, headers=BLAZE).status_code for _ in range(40)]
    assert 5 < sum(c >= 500 for c in codes) < 35 and codes.count(200) > 5
