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
