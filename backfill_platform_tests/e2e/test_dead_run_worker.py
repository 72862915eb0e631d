"""A run worker killed with SIGKILL mid-range: the run is marked failed, its pool slot is freed, Dagster retries it,
and the retry resumes from the ledger — all through the daemon, as a backfill launched by the CLI would be."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import BACKFILL_ID_TAG

from backfill_platform.backfills import daemon, submit
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform_tests.sources.helpers import committed, daemon_environment, drop_schemas, until


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
        found = re.search(r"(?:parent process|steps in process) \(pid: (\d+)\)", record.event_log_entry.user_message)
        if found:
            return int(found.group(1))
    return None


@pytest.mark.e2e
@pytest.mark.slow
def test_sigkilled_run_worker_is_failed_freed_retried_and_resumed(sandbox, db_url: str, tmp_path: Path) -> None:
    drop_schemas(db_url, "blaze")
    env = daemon_environment(tmp_path, db_url, sandbox)
    home = env["DAGSTER_HOME"]
    first, last = date(2024, 6, 1), date(2024, 6, 10)
    days = [first + timedelta(days=n) for n in range(10)]
    per_day = [len(truth.transactions_for_day(SandboxConfig().seed, d)) for d in days]
    first_window = -(-sum(per_day[:7]) // 100)
    # the first window's calls answer at once; the next 6 take 2 s each, so the kill (within a second of the first
    # window's commit) lands in the second window, 12 s before it could commit; the retry's calls are then fast
    sandbox.faults("blaze", {"scripted": [{"kind": "slow", "seconds": 2, "times": 6, "after": first_window}]})
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME",)}
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance, daemon(env):
            from backfill_platform.definitions import defs

            keys = [dg.AssetKey(["blaze", "transactions"]), dg.AssetKey(["blaze", "transaction_items"])]
            backfill_id = submit(
                instance, defs.resolve_asset_graph(), keys, first.isoformat(), last.isoformat(), {}, "kill test"
            )
            runs = lambda: instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))  # noqa: E731
            until(lambda: committed(db_url, "blaze/transactions") >= 7, 180, "the first window to commit")
            victim = runs()[0]
            pid = _worker_pid(instance, victim.run_id)
            assert pid is not None, [
                r.event_log_entry.user_message
                for r in instance.get_records_for_run(victim.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
            ]
            # the run worker and its step processes, as when its machine or container is lost
            worker = psutil.Process(pid)
            for proc in [*worker.children(recursive=True), worker]:
                proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            until(
                lambda: instance.get_run_by_id(victim.run_id).status == DagsterRunStatus.FAILURE,  # type: ignore[union-attr]
                120,
                "the dead run to be marked failed",
            )
            failed_after = time.monotonic() - killed_at
            until(
                lambda: victim.run_id not in instance.event_log_storage.get_concurrency_info("blaze").active_run_ids,
                120,
                "the dead run's pool slot to be freed",
            )
            freed_after = time.monotonic() - killed_at
            until(lambda: any(r.status == DagsterRunStatus.SUCCESS for r in runs()), 240, "the retry to succeed")
            statuses = sorted(r.status.value for r in runs())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert statuses == ["FAILURE", "SUCCESS"]
    assert failed_after < 120 and freed_after < 120
    expected = {t["id"] for d in days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM blaze.transactions")]
        by_run = conn.execute(
            "SELECT count(*) FROM backfill_platform.ledger WHERE asset = 'blaze/transactions' AND lineage = %s "
            "GROUP BY run_id ORDER BY 1 DESC",
            (f"backfill:{backfill_id}",),
        ).fetchall()
    assert sorted(stored) == sorted(expected)  # nothing lost, nothing doubled
    assert by_run == [(7,), (3,)]  # the retry fetched only what the dead run had not committed
