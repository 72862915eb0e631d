"""The environment that points the platform's clients at a sandbox: base URLs and the credentials it accepts."""

from __future__ import annotations

from backfill_platform import settings
from backfill_platform.sandbox.core import SandboxConfig

APIS = ("blaze", "canton", "racing", "alpaca", "stacks")


def base_urls(origin: str) -> dict[str, str]:
    """BACKFILL_<SOURCE>_BASE_URL values that point each client at its simulator."""
    return {settings.base_url_var(api): f"{origin}/{api}" for api in APIS}


def credentials(config: SandboxConfig) -> dict[str, str]:
    """The credentials the simulators accept, under the names the clients read."""
    return {
        "BACKFILL_BLAZE_PARTNER_KEY": config.blaze_partner_key,
        "BACKFILL_BLAZE_API_KEY": config.blaze_api_key,
        "BACKFILL_RACING_USERNAME": config.racing_username,
        "BACKFILL_RACING_PASSWORD": config.racing_password,
        "BACKFILL_ALPACA_KEY_ID": config.alpaca_key_id,
        "BACKFILL_ALPACA_SECRET_KEY": config.alpaca_secret_key,
    }


def source_settings(config: SandboxConfig) -> dict[str, str]:
    """Settings a source needs beyond credentials, offered for a source that uses the sandbox and leaves them unset:
    the Stacks wallets to track (the simulator's busy wallets) and its API key (the keyed limit)."""
    from backfill_platform.sandbox.generators import stacks

    return {
        "BACKFILL_STACKS_WALLETS": ",".join(stacks.busy_wallets(config.seed)),
        "BACKFILL_STACKS_API_KEY": config.stacks_api_key,
    }
