"""BACKFILL_<SOURCE>_PARTITIONS_PER_RUN through the daemon: a ranged backfill becomes runs of N days, side by side."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from backfill_platform.errors import ConfigurationError
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import canton as truth
from backfill_platform.sources import SOURCES, load
from backfill_platform_tests.sources.helpers import drop_schemas

CLI = [sys.executable, "-m", "backfill_platform.cli"]
FIRST = datetime(2024, 12, 8, tzinfo=UTC)  # six days across the overlap of migrations 0 and 1


def test_every_source_reads_the_setting_and_defaults_to_one_run_per_range() -> None:
    env = {f"BACKFILL_{s.name.upper()}_PARTITIONS_PER_RUN": "3" for s in SOURCES[1:]}
    for source in load(env):
        policies = {a.backfill_policy for a in source.assets if a.partitions_def is not None}  # masters: none
        expected = dg.BackfillPolicy.single_run() if source.name == SOURCES[0].name else dg.BackfillPolicy.multi_run(3)
        assert policies == {expected}, source.name
    with pytest.raises(ConfigurationError, match=r"^BACKFILL_BLAZE_PARTITIONS_PER_RUN='0' is not a whole number"):
        load({"BACKFILL_BLAZE_PARTITIONS_PER_RUN": "0"})


@pytest.mark.e2e
@pytest.mark.slow
def test_six_days_at_two_partitions_per_run_are_three_runs_that_land_the_ground_truth(db_url: str, tmp_path) -> None:
    drop_schemas(db_url, "canton")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_CANTON_")}
    env.update(
        BACKFILL_DATABASE_URL=db_url, BACKFILL_HOME=str(tmp_path / "home"), BACKFILL_CANTON_PARTITIONS_PER_RUN="2"
    )
    proc = subprocess.run(
        [*CLI, "backfill", "canton", "--from", "2024-12-08", "--to", "2024-12-13"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SUCCESS (3 runs)" in proc.stdout, proc.stdout
    cfg = SandboxConfig()
    expected = truth.updates_in_window(cfg.seed, cfg.scale, FIRST, FIRST + timedelta(days=6))
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT update_id FROM canton.updates ORDER BY migration_id, record_time")]
        per_run = conn.execute(
            "SELECT array_agg(partition ORDER BY partition) FROM backfill_platform.ledger "
            "WHERE asset = 'canton/updates' GROUP BY run_id ORDER BY 1"
        ).fetchall()
    assert stored == [u["update_id"] for u in expected]
    assert f"canton/updates: {len(expected):,} rows in 6 partitions" in proc.stdout
    days = [(FIRST + timedelta(days=n)).date().isoformat() for n in range(6)]
    assert [r[0] for r in per_run] == [days[0:2], days[2:4], days[4:6]]  # each run committed its own two days
