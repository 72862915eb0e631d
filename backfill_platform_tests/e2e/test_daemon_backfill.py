"""End to end through the daemon: a partition backfill launched exactly as the Dagster UI launches it."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform.sandbox.generators import canton as scan
from backfill_platform.sandbox.server import credentials, free_port
from backfill_platform_tests.conftest import REPO_ROOT

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } }
}"""
LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _gql(url: str, query: str, variables: dict | None = None) -> dict:
    r = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=30)
    r.raise_for_status()
    return r.json()["data"]


def _wait(predicate, seconds: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dagster dev exited while waiting for {what}"
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
@pytest.mark.slow
def test_ui_style_backfill_completes_through_the_daemon(sandbox, db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BACKFILL_DATABASE_URL": db_url,
        **sandbox.base_urls(),
        **credentials(SandboxConfig()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    graphql = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait(
            lambda: any(
                e["loadStatus"] == "LOADED" for e in _gql(graphql, LOCATION)["workspaceOrError"]["locationEntries"]
            ),
            120,
            "the code location",
            proc,
        )
        rng = {"range": {"start": "2024-03-01", "end": "2024-03-03"}}
        scan_days = {"range": {"start": "2024-12-09", "end": "2024-12-11"}}  # across two overlapping migrations
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": ["blaze", "transactions"]}, "partitions": rng},
                {"assetKey": {"path": ["blaze", "transaction_items"]}, "partitions": rng},
                {"assetKey": {"path": ["canton", "updates"]}, "partitions": scan_days},
                {"assetKey": {"path": ["canton", "events"]}, "partitions": scan_days},
            ]
        }
        launched = _gql(graphql, LAUNCH, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        status: dict = {}

        def done() -> bool:
            status.update(_gql(graphql, STATUS, {"id": backfill_id})["partitionBackfillOrError"])
            return status.get("status") in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

        _wait(done, 240, "the backfill to finish", proc)
        assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), status
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    days = [date(2024, 3, 1) + timedelta(days=n) for n in range(3)]
    expected = {t["id"] for d in days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM blaze.transactions")}
        scan_ids = [
            r[0] for r in conn.execute("SELECT update_id FROM canton.updates ORDER BY migration_id, record_time")
        ]
        scan_events = conn.execute("SELECT count(*) FROM canton.events").fetchone()[0]
        runs = conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
        lineages = conn.execute("SELECT DISTINCT lineage FROM backfill_platform.ledger").fetchall()
    assert stored == expected
    first = datetime(2024, 12, 9, tzinfo=UTC)
    scan_truth = scan.updates_in_window(SandboxConfig().seed, SandboxConfig().scale, first, first + timedelta(days=3))
    assert scan_ids == [u["update_id"] for u in scan_truth]  # the multi-asset ran as one single-run backfill run
    assert scan_events == sum(len(u["events_by_id"]) if "events_by_id" in u else 1 for u in scan_truth)
    assert dict(runs).get("SUCCESS", 0) >= 1 and "FAILURE" not in dict(runs)  # one single-run backfill run
    assert lineages == [(f"backfill:{backfill_id}",)]
