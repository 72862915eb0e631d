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
from backfill_platform.sandbox.server import free_port

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


RUNS = """
query Runs($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { runs(limit: 20) { runId status } } }
}"""


def _launch(graphql: str, params: dict) -> str:
    launched = _gql(graphql, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _finish(graphql: str, backfill_id: str, proc: subprocess.Popen, seconds: float = 300) -> str:
    status: dict = {}

    def done() -> bool:
        status.update(_gql(graphql, STATUS, {"id": backfill_id})["partitionBackfillOrError"])
        return status.get("status") in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

    _wait(done, seconds, f"backfill {backfill_id} to finish", proc)
    return status["status"]


def _blaze_calls(origin: str) -> int:
    stats = httpx.get(f"{origin}/_sandbox/stats").json()
    return stats["routes"].get("blaze transactions", {}).get("requests", 0)


@pytest.mark.e2e
@pytest.mark.slow
def test_ui_backfills_through_backfill_platform_dev_land_every_source_and_retries_resume(
    db_url: str, tmp_path: Path
) -> None:
    """`backfill-platform dev` with no credentials: it runs the sandbox and gives the webserver, the daemon and the
    run workers its URLs and keys. Backfills launched as the UI launches them land every source's ground truth; a
    run failed by an API fault is retried by Dagster and the retry fetches only what the ledger does not hold."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKFILL_BLAZE_", "BACKFILL_CANTON_"))}
    env.update(BACKFILL_DATABASE_URL=db_url, BACKFILL_HOME=str(tmp_path / "home"))
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backfill_platform.cli", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    graphql = f"http://127.0.0.1:{port}/graphql"
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline().strip() for _ in range(2)]
        assert printed[0].startswith("blaze: sandbox at http://127.0.0.1:"), printed
        assert printed[1].startswith("canton: sandbox at http://127.0.0.1:"), printed
        origin = printed[0].split(" at ", 1)[1].rsplit("/", 1)[0]
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
        backfill_id = _launch(
            graphql,
            {
                "partitionsByAssets": [
                    {"assetKey": {"path": ["blaze", "transactions"]}, "partitions": rng},
                    {"assetKey": {"path": ["blaze", "transaction_items"]}, "partitions": rng},
                    {"assetKey": {"path": ["canton", "updates"]}, "partitions": scan_days},
                    {"assetKey": {"path": ["canton", "events"]}, "partitions": scan_days},
                ]
            },
        )
        assert _finish(graphql, backfill_id, proc) in ("COMPLETED", "COMPLETED_SUCCESS")

        # A run that fails after its first window committed: Dagster retries it, the retry resumes from the ledger.
        days = [date(2024, 4, 1) + timedelta(days=n) for n in range(10)]
        per_day = [len(truth.transactions_for_day(SandboxConfig().seed, d)) for d in days]
        first_window = -(-sum(per_day[:7]) // 100)
        second_window = -(-sum(per_day[7:]) // 100)
        before = _blaze_calls(origin)
        fault = {"scripted": [{"kind": "status", "status": 400, "times": 1, "after": first_window}]}
        httpx.post(f"{origin}/_sandbox/faults/blaze", json=fault).raise_for_status()
        retry_id = _launch(
            graphql,
            {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": ["blaze", "transactions"]},
                        "partitions": {"range": {"start": "2024-04-01", "end": "2024-04-10"}},
                    },
                    {
                        "assetKey": {"path": ["blaze", "transaction_items"]},
                        "partitions": {"range": {"start": "2024-04-01", "end": "2024-04-10"}},
                    },
                ]
            },
        )
        retried_status = _finish(graphql, retry_id, proc)
        runs = _gql(graphql, RUNS, {"id": retry_id})["partitionBackfillOrError"]["runs"]
        calls = _blaze_calls(origin) - before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    blaze_days = [date(2024, 3, 1) + timedelta(days=n) for n in range(3)]
    expected = {t["id"] for d in blaze_days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM blaze.transactions WHERE business_date < '2024-04-01'")}
        scan_ids = [
            r[0] for r in conn.execute("SELECT update_id FROM canton.updates ORDER BY migration_id, record_time")
        ]
        scan_events = conn.execute("SELECT count(*) FROM canton.events").fetchone()[0]
        lineages = conn.execute(
            "SELECT lineage, count(*) FROM backfill_platform.ledger WHERE lineage <> %s GROUP BY 1",
            (f"backfill:{retry_id}",),
        ).fetchall()
        april = conn.execute(
            "SELECT count(*), count(DISTINCT business_date) FROM blaze.transactions WHERE business_date >= '2024-04-01'"
        ).fetchone()
        april_items = conn.execute(
            "SELECT count(DISTINCT business_date) FROM blaze.transaction_items WHERE business_date >= '2024-04-01'"
        ).fetchone()
        april_runs = conn.execute(
            "SELECT run_id, count(*) FROM backfill_platform.ledger WHERE lineage = %s "
            "AND asset = 'blaze/transactions' GROUP BY 1 ORDER BY 2 DESC",
            (f"backfill:{retry_id}",),
        ).fetchall()
    assert stored == expected
    first = datetime(2024, 12, 9, tzinfo=UTC)
    scan_truth = scan.updates_in_window(SandboxConfig().seed, SandboxConfig().scale, first, first + timedelta(days=3))
    assert scan_ids == [u["update_id"] for u in scan_truth]  # the multi-asset ran as one single-run backfill run
    assert scan_events == sum(len(u["events_by_id"]) if "events_by_id" in u else 1 for u in scan_truth)
    assert lineages == [(f"backfill:{backfill_id}", 12)]  # 2 sources x 2 assets x 3 days, one lineage
    # The retry: the first attempt failed on the 400, Dagster's run retry resumed the same backfill's lineage.
    assert sorted(r["status"] for r in runs) == ["FAILURE", "SUCCESS"], runs
    assert retried_status in ("COMPLETED", "COMPLETED_SUCCESS"), retried_status
    assert april == (sum(per_day), 10) and april_items == (10,)
    assert [n for _, n in april_runs] == [7, 3]  # the failed attempt committed its first window, the retry the rest
    # nothing committed was fetched again; the retry's totals check asks the API once per day of its range
    assert calls == first_window + 1 + second_window + len(days)
