"""The five API resources: each is the shared HTTP path plus that API's authentication scheme."""

from __future__ import annotations

import base64
from typing import ClassVar

from pydantic import Field

from backfill_platform.resources.http import HttpApiResource


class BlazeApi(HttpApiResource):
    """Blaze Partner API: the partner key and the store's developer key, both as headers (no 'Bearer')."""

    API: ClassVar[str] = "blaze"
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.partners.blaze.me"
    DEFAULT_RATE: ClassVar[str] = "7500/5m"  # the replaced script's margin under 10,000 calls per 5 minutes
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("partner_key", "api_key")
    partner_key: str = Field(description="Partner key (BACKFILL_BLAZE_PARTNER_KEY).")
    api_key: str = Field(description="Store developer key (BACKFILL_BLAZE_API_KEY).")
    end_inclusive: bool = Field(
        default=True, description="Whether endDate includes that whole day (BACKFILL_BLAZE_END_INCLUSIVE)."
    )

    def auth_headers(self) -> dict[str, str]:
        return {"partner_key": self.partner_key, "Authorization": self.api_key}


class CantonApi(HttpApiResource):
    """Splice Scan of one SV: no authentication is declared by the API."""

    API: ClassVar[str] = "canton"
    DEFAULT_BASE_URL: ClassVar[str] = "https://scan.sv-1.global.canton.network.sync.global"
    DEFAULT_RATE: ClassVar[str] = "20/s"  # Scan publishes no number; an SV's Envoy bucket decides
    # Until its own backfill is done, Scan answers 503 {"error": "This scan instance has not yet loaded its updates
    # history. Wait a short time and retry."}: only that answer is waited out long; other 5xx get the ordinary limits.
    WARMUP_STATUS: ClassVar[int | None] = 503
    WARMUP_BODY_CONTAINS: ClassVar[str] = "has not yet loaded its updates history"
    migrations: str = Field(
        default="",
        description="Migration ids to walk where migration-info is not served, e.g. '0,1,2' "
        "(BACKFILL_CANTON_MIGRATIONS); empty: ask /v0/backfilling/migration-info, or find them on /v2/updates.",
    )


class RacingApi(HttpApiResource):
    """The Racing API: HTTP Basic with the username and password issued on subscription."""

    API: ClassVar[str] = "racing"
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.theracingapi.com"
    DEFAULT_RATE: ClassVar[str] = "2/s"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("username", "password")
    username: str = Field(description="BACKFILL_RACING_USERNAME")
    password: str = Field(description="BACKFILL_RACING_PASSWORD")
    # The documented limit is 2/s for the whole API; the OpenAPI v1.4.3 lists per-endpoint limits instead (results
    # 5/s, racecards 2/s, courses 1/s). An account on those terms sets them: that endpoint then has its own budget.
    results_rate: str = Field(default="", description="Own budget of /v1/results (BACKFILL_RACING_RESULTS_RATE).")
    racecards_rate: str = Field(default="", description="Own budget of racecards (BACKFILL_RACING_RACECARDS_RATE).")
    courses_rate: str = Field(default="", description="Own budget of /v1/courses* (BACKFILL_RACING_COURSES_RATE).")

    def route_rate(self, scope: str) -> str:
        return {"results": self.results_rate, "racecards": self.racecards_rate, "courses": self.courses_rate}.get(
            scope, ""
        )

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


class AlpacaApi(HttpApiResource):
    """Alpaca Market Data: the APCA key id and secret as headers."""

    API: ClassVar[str] = "alpaca"
    DEFAULT_BASE_URL: ClassVar[str] = "https://data.alpaca.markets"
    DEFAULT_RATE: ClassVar[str] = "200/min"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("key_id", "secret_key")
    key_id: str = Field(description="BACKFILL_ALPACA_KEY_ID")
    secret_key: str = Field(description="BACKFILL_ALPACA_SECRET_KEY")

    def auth_headers(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}


class StacksApi(HttpApiResource):
    """Hiro Stacks API: an optional x-api-key raises the per-minute limit from 50 (per IP) to 500 (per key)."""

    API: ClassVar[str] = "stacks"
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.hiro.so"
    DEFAULT_RATE: ClassVar[str] = "500/min"  # with an API key (docs.hiro.so rate-limits guide)
    ANONYMOUS_RATE: ClassVar[str] = "50/min"  # without one, per client IP
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key",)
    api_key: str = Field(default="", description="Optional BACKFILL_STACKS_API_KEY.")

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    def default_rate(self) -> str:
        return self.DEFAULT_RATE if self.api_key else self.ANONYMOUS_RATE
