"""Shared by the source tests: a clean database per test, and a run killed with SIGKILL in mid-range."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.env import credentials

REPO_ROOT = Path(__file__).resolve().parents[2]


def drop_schemas(db_url: str, *schemas: str) -> str:
    """The source's tables and the platform's ledger and budget gone: each test starts from nothing."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for schema in (*schemas, "backfill_platform"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    writer._ensured.clear()
    return db_url


def committed(db_url: str, asset: str) -> int:
    with psycopg.connect(db_url) as conn:
        if conn.execute("SELECT to_regclass('backfill_platform.ledger')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM backfill_platform.ledger WHERE asset = %s", (asset,)).fetchone()[0]


def kill_after_commits(
    script: str, db_url: str, asset: str, partitions: int, env: dict | None = None, settle_s: float = 0.0
) -> None:
    """Run `script` in a child process and SIGKILL it once `asset` has committed `partitions` partitions."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO_ROOT,
        env={**os.environ, "BACKFILL_DATABASE_URL": db_url, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 120
        while committed(db_url, asset) < partitions:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, f"{partitions} partitions of {asset} never committed"
            time.sleep(0.05)
        time.sleep(settle_s)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)


def partition_metadata(result: dg.ExecuteInProcessResult, asset_key: dg.AssetKey) -> dict[str, dict]:
    """Each partition's figures as reported at its commit (Dagster repeats them on success): values by name."""
    out: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        if m.asset_key == asset_key and m.partition is not None and "rows" in m.metadata:
            out.setdefault(m.partition, {k: v.value for k, v in m.metadata.items()})
    return out


def until(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Wait for `predicate()` to hold, checking twice a second; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def daemon_environment(tmp_path: Path, db_url: str, sandbox: Any) -> dict[str, str]:
    """A fresh DAGSTER_HOME (the project's dagster.yaml) on `db_url`, with the sandbox's URLs and keys: the
    environment of a daemon and the run workers it launches."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BACKFILL_DATABASE_URL": db_url,
        "BACKFILL_HOME": str(tmp_path / "bf"),
        **sandbox.base_urls(),
        **credentials(SandboxConfig()),
    }
