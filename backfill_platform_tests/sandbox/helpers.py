"""Request helpers for the simulators, with the credentials they accept."""

from __future__ import annotations

import base64

import httpx

from backfill_platform.sandbox.core import SandboxConfig

CONFIG = SandboxConfig()
BLAZE = {"partner_key": CONFIG.blaze_partner_key, "Authorization": CONFIG.blaze_api_key}
RACING = {
    "Authorization": "Basic " + base64.b64encode(f"{CONFIG.racing_username}:{CONFIG.racing_password}".encode()).decode()
}
ALPACA = {"APCA-API-KEY-ID": CONFIG.alpaca_key_id, "APCA-API-SECRET-KEY": CONFIG.alpaca_secret_key}
BLAZE_PATH = "/blaze/api/v1/partner/transactions"
SCAN_UPDATES = "/canton/api/scan/v2/updates"


def get(origin: str, path: str, **kwargs) -> httpx.Response:
    return httpx.get(origin + path, timeout=30, **kwargs)


def post(origin: str, path: str, **kwargs) -> httpx.Response:
    return httpx.post(origin + path, timeout=30, **kwargs)
