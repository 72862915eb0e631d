"""Database resolution: the env var wins, the embedded server is shared, bad settings give one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from backfill_platform import database, settings
from backfill_platform.errors import ConfigurationError

CLI = [sys.executable, "-m", "backfill_platform.cli"]


def test_env_var_wins(db_url: str) -> None:
    database.database_url.cache_clear()
    assert database.database_url() == db_url
    with psycopg.connect(database.database_url()) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] in db_url


def test_unreachable_url_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.DATABASE_URL, "postgresql://app:s3cretpw@127.0.0.1:1/warehouse")
    database.database_url.cache_clear()
    with pytest.raises(ConfigurationError) as err:
        database.database_url()
    database.database_url.cache_clear()
    message = str(err.value)
    assert "BACKFILL_DATABASE_URL" in message
    assert "s3cretpw" not in message
    assert "\n" not in message


def test_cli_reports_unreachable_url_without_traceback() -> None:
    env = dict(os.environ, BACKFILL_DATABASE_URL="postgresql://app:s3cretpw@127.0.0.1:1/warehouse")
    proc = subprocess.run([*CLI, "db", "url"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "BACKFILL_DATABASE_URL" in proc.stderr
    assert "s3cretpw" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_unwritable_home_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if k != settings.DATABASE_URL}
    env[settings.HOME] = str(blocker / "home")
    proc = subprocess.run([*CLI, "db", "url"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "BACKFILL_HOME" in proc.stderr and "Traceback" not in proc.stderr


def test_redact_hides_password() -> None:
    assert database.redact("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert database.redact("postgresql://postgres:@/postgres?host=/x") == "postgresql://postgres:@/postgres?host=/x"


def test_sqlalchemy_url_uses_psycopg2() -> None:
    assert database.sqlalchemy_url("postgresql://u@/d?host=/s") == "postgresql+psycopg2://u@/d?host=/s"
    assert database.sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"


@pytest.mark.slow
def test_two_processes_started_at_once_share_one_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != settings.DATABASE_URL}
    env[settings.HOME] = str(tmp_path / "shared_home")
    procs = [
        subprocess.Popen([*CLI, "db", "url"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        urls = {out.strip() for out, _ in outputs}
        assert len(urls) == 1
        with psycopg.connect(urls.pop()) as conn:
            # One postmaster: both processes reached the same server, and it has exactly one data directory.
            assert conn.execute("SHOW data_directory").fetchone()[0] == str(tmp_path / "shared_home" / "pgdata")
            # tuned as measured (docs/canton-scale.md), shared_buffers by the restart under the start-up lock
            (pages,) = conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'").fetchone()
            assert pages == database.shared_buffers_bytes() >> 13 and pages > 128 * 1024 // 8
            assert conn.execute("SHOW max_wal_size").fetchone()[0] == "16GB"
        pid_file = tmp_path / "shared_home" / "pgdata" / "postmaster.pid"
        assert pid_file.exists()
    finally:
        stop = subprocess.run([*CLI, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stop.stdout.strip() == "stopped"
    assert not pid_file.exists()
