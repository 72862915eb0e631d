"""A run killed with SIGKILL in the middle of a range, then retried: nothing lost, nothing doubled, no refetch."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform_tests.io_managers.fixtures import range_tags, resumable_events_asset

BACKFILL = {"dagster/backfill": "bf-kill-test"}
TAGS = {**range_tags("2024-03-01", "2024-03-06"), **BACKFILL}


def _ledger(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        if conn.execute("SELECT to_regclass('backfill_platform.ledger')").fetchone()[0] is None:
            return []
        return conn.execute(
            "SELECT partition, run_id, lineage FROM backfill_platform.ledger ORDER BY partition"
        ).fetchall()


@pytest.mark.slow
def test_sigkill_mid_range_then_retry_resumes(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS iotest CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    log = tmp_path / "fetches.log"
    script = textwrap.dedent(f"""
        import dagster as dg
        from backfill_platform.io_managers.postgres import PostgresIOManager
        from backfill_platform_tests.io_managers.fixtures import resumable_events_asset
        asset = resumable_events_asset({str(log)!r}, stall_after=3)
        dg.materialize([asset], resources={{"io_manager": PostgresIOManager(database_url={db_url!r})}},
                       tags={TAGS!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 120
        while len(_ledger(db_url)) < 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "three partitions never committed"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    killed = _ledger(db_url)
    assert [p for p, _, _ in killed] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    killed_run = killed[0][1]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM iotest.events").fetchone() == (15,)  # whole partitions only

    # The retry belongs to the same backfill: it fetches only what the killed run did not commit.
    io = {"io_manager": PostgresIOManager(database_url=db_url)}
    result = dg.materialize([resumable_events_asset(str(log))], resources=io, tags=TAGS)
    assert result.success
    fetches = [line.split() for line in log.read_text().splitlines()]
    assert [k for run, k in fetches if run == killed_run] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert [k for run, k in fetches if run == result.run_id] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    ledger = _ledger(db_url)
    assert [(p, r == killed_run) for p, r, _ in ledger] == [
        ("2024-03-01", True),
        ("2024-03-02", True),
        ("2024-03-03", True),
        ("2024-03-04", False),
        ("2024-03-05", False),
        ("2024-03-06", False),
    ]
    with psycopg.connect(db_url) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM iotest.events").fetchone()
    assert total == distinct == 30

    # A fresh, unrelated run (no backfill tag) is a new lineage: it refetches everything.
    fresh = dg.materialize(
        [resumable_events_asset(str(log))], resources=io, tags=range_tags("2024-03-01", "2024-03-06")
    )
    refetched = [k for run, k in (line.split() for line in log.read_text().splitlines()) if run == fresh.run_id]
    assert len(refetched) == 6


def test_resume_is_answered_by_the_database_the_io_manager_writes_to(db_url: str, pg_server: str) -> None:
    """BACKFILL_DATABASE_URL names one database, the IO manager another: the ledger that decides is the writer's."""
    from backfill_platform_tests.conftest import create_database
    from backfill_platform_tests.io_managers.fixtures import events_asset

    other = create_database(pg_server, "resume_other")
    io = {"io_manager": PostgresIOManager(database_url=other)}
    tags = {**range_tags("2024-03-01", "2024-03-04"), "dagster/backfill": "bf-other-db"}
    fetched: list[str] = []
    first = dg.materialize([events_asset(fetched=fetched)], resources=io, tags=tags)
    assert first.success and fetched == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
    # The retry of the same backfill resumes from `other`'s ledger: nothing is fetched again.
    retry = dg.materialize([events_asset(fetched=fetched)], resources=io, tags=tags)
    assert retry.success and len(fetched) == 4
    resumed = [
        e.materialization
        for e in retry.get_asset_materialization_events()
        if e.materialization.partition == "2024-03-02"
    ]
    assert [(m.metadata["rows"].value, m.metadata["committed_by_run"].value) for m in resumed] == [(5, first.run_id)]
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM backfill_platform.ledger").fetchone() == (4,)
    assert all(run == first.run_id for _, run, _ in _ledger(other))
    assert not any(lineage == "backfill:bf-other-db" for _, _, lineage in _ledger(db_url))
