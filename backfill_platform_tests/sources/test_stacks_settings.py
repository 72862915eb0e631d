"""Stacks settings and the HTTP path: the budget follows the API key, wallets parse in one line, retry-after."""

import time
from datetime import UTC, datetime

import pytest

from backfill_platform.errors import ConfigurationError
from backfill_platform.resources.apis import StacksApi
from backfill_platform.sources import load, named
from backfill_platform.sources.stacks import SOURCE
from backfill_platform.sources.stacks.client import StacksClient
from backfill_platform_tests.sources.stacks_fixtures import BUSY, CFG


def per_minute(api: StacksApi) -> list[tuple[int, float]]:
    return [(w.limit, w.period_s) for w in api.windows()]


def test_the_budget_is_50_a_minute_anonymous_and_500_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKFILL_STACKS_RATE", raising=False)
    assert per_minute(StacksApi()) == [(50, 60.0)]
    assert per_minute(StacksApi(api_key="k")) == [(500, 60.0)]
    monkeypatch.setenv("BACKFILL_STACKS_RATE", "900/min")  # a paid tier
    assert per_minute(StacksApi()) == [(900, 60.0)]


def test_the_key_reaches_the_resource_only_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKFILL_STACKS_API_KEY", raising=False)
    stacks = named("stacks", load({}))
    assert SOURCE.resource(stacks.config).api_key == ""
    monkeypatch.setenv("BACKFILL_STACKS_API_KEY", "secret-key")
    resource = SOURCE.resource(stacks.config)
    assert "secret-key" not in repr(resource)


def test_wallets_are_a_comma_list_or_a_file(tmp_path) -> None:
    a, b, c = BUSY
    assert named("stacks", load({"BACKFILL_STACKS_WALLETS": f" {a}, {b},{a}"})).config["WALLETS"] == (a, b)
    listed = tmp_path / "wallets.txt"
    listed.write_text(f"# exchange wallets\n{a}\n{b}, {c}  # cold\n")
    assert named("stacks", load({"BACKFILL_STACKS_WALLETS": f"@{listed}"})).config["WALLETS"] == (a, b, c)


@pytest.mark.parametrize("value", ["not-an-address", "@/nowhere/wallets.txt", "SP123,sp456"])
def test_a_malformed_wallet_list_is_one_line_at_load(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load({"BACKFILL_STACKS_WALLETS": value})
    message = str(caught.value)
    assert message.startswith(f"BACKFILL_STACKS_WALLETS={value!r} is not a comma list of Stacks addresses")
    assert "\n" not in message


def test_retry_after_on_429_is_honoured(sandbox, db_url) -> None:
    sandbox.faults(
        "stacks",
        {"scripted": [{"kind": "status", "status": 429, "headers": {"retry-after": "1"}, "route": "/transactions"}]},
    )
    api = StacksApi(base_url=f"{sandbox.origin}/stacks", api_key=CFG.stacks_api_key, use_budget=False)
    session = api.session()
    started = time.monotonic()
    rows = list(StacksClient(session).walk(BUSY[0], datetime(2026, 5, 3, tzinfo=UTC)))
    assert time.monotonic() - started >= 1.0
    assert rows and session.metrics.http_429 == 1 and session.metrics.retry_wait_s >= 1.0
    session.close()


def test_the_sandbox_offers_its_wallets_and_key_only_where_unset(sandbox) -> None:
    from backfill_platform.endpoints import use_sandbox_url
    from backfill_platform.sources import SOURCES

    env = {"BACKFILL_SANDBOX_URL": sandbox.origin}
    assert "stacks" in use_sandbox_url(SOURCES, env)
    assert env["BACKFILL_STACKS_WALLETS"] == ",".join(BUSY) and env["BACKFILL_STACKS_API_KEY"] == CFG.stacks_api_key
    own = {"BACKFILL_SANDBOX_URL": sandbox.origin, "BACKFILL_STACKS_WALLETS": BUSY[1]}
    use_sandbox_url(SOURCES, own)
    assert own["BACKFILL_STACKS_WALLETS"] == BUSY[1]
