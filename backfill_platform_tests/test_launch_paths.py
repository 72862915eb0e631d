"""`dagster` used directly: BACKFILL_SANDBOX_URL points it at a running sandbox; without it, a source lacking
credentials fails in one line that says what to set; a base URL without credentials never falls back silently."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from backfill_platform.cli import main
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform_tests.conftest import REPO_ROOT
from backfill_platform_tests.sources.helpers import drop_schemas

DAGSTER = [sys.executable, "-m", "dagster"]


def _env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKFILL_BLAZE_", "BACKFILL_SANDBOX"))}
    return {**env, "BACKFILL_DATABASE_URL": db_url, "DAGSTER_HOME": str(home), **extra}


def _materialize(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DAGSTER, "asset", "materialize", "-m", "backfill_platform.definitions", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_dagster_asset_materialize_runs_against_the_sandbox_named_by_one_setting(sandbox, db_url, tmp_path) -> None:
    drop_schemas(db_url, "blaze")
    env = _env(db_url, tmp_path, BACKFILL_SANDBOX_URL=sandbox.origin)
    proc = _materialize(
        env,
        tmp_path,
        "--select",
        "blaze/transactions,blaze/transaction_items",
        "--partition-range",
        "2024-03-01...2024-03-02",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {t["id"] for d in (1, 2) for t in truth.transactions_for_day(SandboxConfig().seed, date(2024, 3, d))}
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM blaze.transactions")}
    assert stored == expected
    assert not (tmp_path / "storage").exists()  # Dagster's artefacts stay under DAGSTER_HOME


@pytest.mark.slow
def test_dagster_asset_materialize_without_credentials_says_what_to_set(db_url, tmp_path) -> None:
    drop_schemas(db_url, "blaze")
    proc = _materialize(_env(db_url, tmp_path), tmp_path, "--select", "blaze/transactions", "--partition", "2024-03-05")
    assert proc.returncode != 0
    line = (
        "BACKFILL_BLAZE_PARTNER_KEY, BACKFILL_BLAZE_API_KEY are not set; export the blaze credentials, or run "
        "against the sandbox: `backfill-platform dev`, or `backfill-platform sandbox` and BACKFILL_SANDBOX_URL="
    )
    assert line in proc.stdout + proc.stderr
    assert "You have attempted to fetch the environment variable" not in proc.stdout + proc.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('blaze.transactions')").fetchone() == (None,)


def test_a_sandbox_url_that_does_not_answer_stops_the_load_in_one_line(db_url, tmp_path) -> None:
    from backfill_platform.sandbox.server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-c", "import backfill_platform.definitions"],
        cwd=tmp_path,
        env=_env(db_url, tmp_path, BACKFILL_SANDBOX_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"BACKFILL_SANDBOX_URL={url} does not answer as a sandbox" in proc.stderr


def test_a_real_base_url_without_credentials_never_falls_back_to_the_sandbox(monkeypatch, capsys) -> None:
    for var in ("BACKFILL_BLAZE_PARTNER_KEY", "BACKFILL_BLAZE_API_KEY", "BACKFILL_SANDBOX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BACKFILL_BLAZE_BASE_URL", "https://api.partners.blaze.me")
    assert main(["backfill", "blaze", "--from", "2024-03-01", "--to", "2024-03-02"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "backfill-platform: BACKFILL_BLAZE_BASE_URL is set to https://api.partners.blaze.me but "
        "BACKFILL_BLAZE_PARTNER_KEY and BACKFILL_BLAZE_API_KEY are not set; export the blaze credentials, "
        "or unset BACKFILL_BLAZE_BASE_URL to use the sandbox\n"
    )
