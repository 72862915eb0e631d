"""A run whose pool is full waits in the run queue — no process, no CPU — and proceeds when the slot frees; SIGTERM
to a run worker that is fetching ends it within 10 s, its run marked failed, never left STARTED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import BACKFILL_ID_TAG, MAX_RETRIES_TAG

from backfill_platform.backfills import daemon, submit
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.env import credentials
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform_tests.conftest import REPO_ROOT
from backfill_platform_tests.e2e.test_dead_run_worker import _worker_pid
from backfill_platform_tests.sources.helpers import drop_schemas, until

KEYS = [dg.AssetKey(["blaze", "transactions"]), dg.AssetKey(["blaze", "transaction_items"])]
ENDED = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
WAIT_S = 8  # how long the test watches the queued run cost nothing


def _tree_cpu(pid: int, leave_out: set[int]) -> float:
    """User + system CPU seconds of a process and its descendants, without the processes in `leave_out`."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        if proc.pid in leave_out:
            continue
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _processes_naming(run_id: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(run_id in part for part in proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


@pytest.mark.e2e
@pytest.mark.slow
def test_a_run_waiting_for_its_pool_costs_no_cpu_and_sigterm_fails_a_fetching_run(
    sandbox, db_url: str, tmp_path: Path
) -> None:
    drop_schemas(db_url, "blaze")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BACKFILL_DATABASE_URL": db_url,
        "BACKFILL_HOME": str(tmp_path / "bf"),
        **sandbox.base_urls(),
        **credentials(SandboxConfig()),
    }
    # the first run's calls are slow, so it is still fetching when it is told to stop
    # (8 slow calls: 20 s, of which the wait below and the worker's start take ~12 s)
    sandbox.faults("blaze", {"scripted": [{"kind": "slow", "seconds": 2.5, "times": 8}]})
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance, daemon(env) as daemon_proc:
            from backfill_platform.definitions import defs

            instance.event_log_storage.set_concurrency_slots("blaze", 1)  # one run of the pool at a time
            graph = defs.resolve_asset_graph()
            no_retry = {MAX_RETRIES_TAG: "0"}  # the stopped run stays stopped: the other one takes the slot
            ids = [
                submit(instance, graph, KEYS, "2024-09-01", "2024-09-02", no_retry, "pool wait A"),
                submit(instance, graph, KEYS, "2024-09-03", "2024-09-04", no_retry, "pool wait B"),
            ]
            runs = lambda: [r for b in ids for r in instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: b}))]  # noqa: E731

            def started() -> bool:
                return len(runs()) == 2 and any(r.status == DagsterRunStatus.STARTED for r in runs())

            until(started, 180, "one run to start while the other exists")
            holder = next(r for r in runs() if r.status == DagsterRunStatus.STARTED)
            waiter = next(r for r in runs() if r.run_id != holder.run_id)
            until(lambda: _worker_pid(instance, holder.run_id) is not None, 60, "the holder's worker pid")
            worker_pid = _worker_pid(instance, holder.run_id)
            assert worker_pid is not None
            holder_tree = {worker_pid, *(p.pid for p in psutil.Process(worker_pid).children(recursive=True))}

            cpu_before = _tree_cpu(daemon_proc.pid, holder_tree)
            waited_from = time.monotonic()
            while time.monotonic() - waited_from < WAIT_S:
                assert instance.get_run_by_id(waiter.run_id).status == DagsterRunStatus.QUEUED  # type: ignore[union-attr]
                assert _processes_naming(waiter.run_id) == []  # waiting costs no process at all
                time.sleep(1)
            daemon_cpu = _tree_cpu(daemon_proc.pid, holder_tree) - cpu_before

            worker = psutil.Process(worker_pid)  # held before the signal: the worker may be gone by the wait
            signalled = time.monotonic()
            os.kill(worker_pid, signal.SIGTERM)
            until(lambda: instance.get_run_by_id(holder.run_id).status in ENDED, 10, "the stopped run to end")  # type: ignore[union-attr]
            ended_after = time.monotonic() - signalled
            worker.wait(max(0.1, 10 - ended_after))

            until(lambda: instance.get_run_by_id(waiter.run_id).status == DagsterRunStatus.SUCCESS, 180, "the waiter")  # type: ignore[union-attr]
            holder_record = instance.get_run_record_by_id(holder.run_id)
            waiter_record = instance.get_run_record_by_id(waiter.run_id)
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    print(f"daemon CPU while the run waited {WAIT_S} s: {daemon_cpu:.2f} s; SIGTERM to run end: {ended_after:.1f} s")
    assert holder_record and waiter_record and holder_record.end_time and waiter_record.start_time
    assert waiter_record.start_time >= holder_record.end_time  # it started only once the slot was free
    # the daemon polls the queue and its other loops; the waiting run itself costs nothing
    assert daemon_cpu < WAIT_S * 0.25
    first = date.fromisoformat(waiter.tags["dagster/asset_partition_range_start"])
    days = [first, first + timedelta(days=1)]
    expected = {t["id"] for d in days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = [
            r[0] for r in conn.execute("SELECT id FROM blaze.transactions WHERE business_date = ANY(%s)", (days,))
        ]
    assert sorted(stored) == sorted(expected)


@pytest.mark.e2e
@pytest.mark.slow
def test_sigterm_stops_the_cli_its_daemon_and_run_workers_within_10_s(sandbox, db_url: str, tmp_path: Path) -> None:
    """`timeout`, systemd or Kubernetes stop `backfill-platform backfill` with SIGTERM while its run is fetching:
    the command, the daemon it started and that daemon's run workers are gone within 10 s, the run ended FAILURE."""
    drop_schemas(db_url, "blaze")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKFILL_BLAZE_", "DAGSTER_HOME"))}
    env.update(
        BACKFILL_DATABASE_URL=db_url,
        BACKFILL_HOME=str(tmp_path / "home"),
        BACKFILL_BLAZE_BASE_URL=f"{sandbox.origin}/blaze",
        **{k: v for k, v in credentials(SandboxConfig()).items() if k.startswith("BACKFILL_BLAZE_")},
    )
    sandbox.faults("blaze", {"scripted": [{"kind": "slow", "seconds": 3, "times": 20}]})
    cmd = [
        sys.executable,
        "-m",
        "backfill_platform.cli",
        "backfill",
        "blaze",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-02",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(tmp_path / "home" / "dagster_home")
    try:
        until(lambda: (tmp_path / "home" / "dagster_home" / "dagster.yaml").exists(), 60, "the platform instance")
        with dg.DagsterInstance.get() as instance:
            until(lambda: any(r.status == DagsterRunStatus.STARTED for r in instance.get_runs()), 180, "a run")
            run = instance.get_runs()[0]
            until(lambda: _worker_pid(instance, run.run_id) is not None, 60, "the run's worker")
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            exited_after = time.monotonic() - signalled
            _, alive = psutil.wait_procs(tree, timeout=max(0.1, 10 - exited_after))
            status = instance.get_run_by_id(run.run_id).status  # type: ignore[union-attr]
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
    print(f"backfill-platform backfill exited {exited_after:.1f} s after SIGTERM; run {status.value}")
    assert exited_after < 10 and proc.returncode == 130, out
    assert alive == [], [" ".join(p.cmdline())[:160] for p in alive]  # daemon, code server, run workers: gone
    assert status in ENDED, status
    assert "detached from backfill" in out
