"""Bad input gets one line: dates that are not YYYY-MM-DD, and a partition range that holds no partitions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from backfill_platform import cli, config
from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import BlazeApi
from backfill_platform.sources import load, named
from backfill_platform.summary import failure_line
from backfill_platform_tests.conftest import REPO_ROOT
from backfill_platform_tests.sources.helpers import drop_schemas

INVERTED = "partition range 2024-03-05...2024-03-01 holds no partitions: the start is after the end; swap them"
INVERTED_TAGS = {
    "dagster/asset_partition_range_start": "2024-03-05",
    "dagster/asset_partition_range_end": "2024-03-01",
}


# Python 3.11's date.fromisoformat takes all of these; the platform takes YYYY-MM-DD only.
NOT_YYYY_MM_DD = ["20240301", "2024-W10-1", "2024-W10", "2024-061", "2024-3-1", "2024-03-01T00:00"]


@pytest.mark.parametrize("text", NOT_YYYY_MM_DD)
def test_parse_date_takes_yyyy_mm_dd_only(text: str) -> None:
    with pytest.raises(ValueError):
        config.parse_date(text)


def test_parse_date_still_takes_a_date_and_checks_it() -> None:
    assert config.parse_date("2024-03-01") == date(2024, 3, 1)
    with pytest.raises(ValueError):
        config.parse_date("2024-13-01")


def test_a_compact_date_in_the_environment_is_one_line() -> None:
    with pytest.raises(ConfigurationError) as err:
        config.read(
            "BACKFILL_BLAZE_START",
            "2023-01-01",
            config.parse_date,
            "a date; write YYYY-MM-DD",
            {"BACKFILL_BLAZE_START": "20240301"},
        )
    assert str(err.value) == "BACKFILL_BLAZE_START='20240301' is not a date; write YYYY-MM-DD"


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("20240301", "2024-03-05", "--from '20240301' is not a date; write YYYY-MM-DD"),
        ("2024-W10-1", "2024-03-05", "--from '2024-W10-1' is not a date; write YYYY-MM-DD"),
        ("2024-03-01", "20240305", "--to '20240305' is not a date; write YYYY-MM-DD"),
        ("2024-13-01", "2024-03-05", "--from '2024-13-01' is not a date; write YYYY-MM-DD"),  # the same wording
    ],
)
def test_backfill_dates_that_are_not_yyyy_mm_dd_are_one_line(
    capsys: pytest.CaptureFixture[str], first: str, last: str, message: str
) -> None:
    assert cli.main(["backfill", "blaze", "--from", first, "--to", last]) == 2
    err = capsys.readouterr().err
    assert err == f"backfill-platform: {message}\n"
    assert "inverted" not in err and "Traceback" not in err


def closed_port_api() -> tuple[socket.socket, BlazeApi]:
    """A Blaze resource whose origin refuses every connection: the run must fail before it calls the API."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    api = BlazeApi(
        base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/blaze",
        partner_key="partner",
        api_key="key",
        max_attempts=1,
        use_budget=False,
    )
    return sock, api


def table_exists(db_url: str) -> bool:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT to_regclass('blaze.transactions')").fetchone() != (None,)


def test_an_inverted_partition_range_fails_in_one_line_and_writes_nothing(db_url: str) -> None:
    """Dagster runs the step with no partition keys (and would report SUCCESS); the asset refuses instead."""
    drop_schemas(db_url, "blaze")
    sock, api = closed_port_api()
    with sock:
        result = dg.materialize(
            [*named("blaze", load()).assets, *named("blaze", load()).checks],
            resources={"blaze": api, "io_manager": PostgresIOManager(database_url=db_url)},
            tags=INVERTED_TAGS,
            raise_on_error=False,
        )
    assert not result.success
    failures = result.get_step_failure_events()
    assert len(failures) == 1  # the asset's step; its checks are skipped, not failed
    error = failures[0].step_failure_data.error
    assert error is not None and INVERTED in error.message
    assert not result.get_asset_materialization_events()
    assert failure_line(result.all_events) == INVERTED
    assert not table_exists(db_url)


def test_dagster_cli_with_an_inverted_partition_range_fails_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    """The reported command itself: `dagster asset materialize --partition-range 2024-03-05...2024-03-01`."""
    drop_schemas(db_url, "blaze")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    sock, _ = closed_port_api()
    with sock:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "BACKFILL_DATABASE_URL": db_url,
            "BACKFILL_BLAZE_PARTNER_KEY": "partner",
            "BACKFILL_BLAZE_API_KEY": "key",
            "BACKFILL_BLAZE_BASE_URL": f"http://127.0.0.1:{sock.getsockname()[1]}",
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster",
                "asset",
                "materialize",
                "-m",
                "backfill_platform.definitions",
                "--select",
                "blaze/transactions",
                "--partition-range",
                "2024-03-05...2024-03-01",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert INVERTED in output, output[-3000:]
    assert "Materialization failed." in output
    assert "does not exist" not in output  # the checks did not run against a table that was never written
    assert not table_exists(db_url)
