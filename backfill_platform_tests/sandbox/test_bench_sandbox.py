"""Benchmark: the Scan simulator serves pre-rendered pages fast enough not to bottleneck a backfill."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import SandboxProcess

GOAL_EVENTS_PER_S = 200_000


def _walk(client: httpx.Client, origin: str, pages: int) -> tuple[int, float]:
    """Fetch `pages` pages of 1,000 updates; returns (events served, seconds spent waiting on the server)."""
    after, events, waited = None, 0, 0.0
    for _ in range(pages):
        body = {"page_size": 1000, **({"after": after} if after else {})}
        t0 = time.perf_counter()
        r = client.post(f"{origin}/canton/api/scan/v2/updates", json=body)
        waited += time.perf_counter() - t0
        items = orjson.loads(r.content)["transactions"]
        events += sum(len(i.get("events_by_id", {})) or 1 for i in items)
        last = items[-1]
        after = {"after_migration_id": last.get("migration_id", 0), "after_record_time": last["record_time"]}
    return events, waited


@pytest.mark.benchmark
def test_scan_pages_events_per_second() -> None:
    config = SandboxConfig(canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    with SandboxProcess(config) as server, httpx.Client(timeout=60) as client:
        cold_events, cold_s = _walk(client, server.origin, 60)
        warm_events, warm_s = _walk(client, server.origin, 60)
    cold, warm = cold_events / cold_s, warm_events / warm_s
    print(
        f"\nScan simulator: cold {cold:,.0f} events/s (rendering days), warm {warm:,.0f} events/s (cached bytes); "
        f"warm/goal = {warm / GOAL_EVENTS_PER_S:.2f}"
    )
    assert warm >= GOAL_EVENTS_PER_S
