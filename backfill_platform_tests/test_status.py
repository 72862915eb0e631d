"""`backfill-platform status`: gaps as compact ranges, failures from Dagster's instance, exit codes, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from backfill_platform import status
from backfill_platform.cli import main
from backfill_platform.io_managers import ledger
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform.sources import load, named
from backfill_platform_tests.sources.helpers import drop_schemas
from backfill_platform_tests.sources.test_blaze import resources

CFG = SandboxConfig()
BLAZE = named("blaze", load())
ASSETS = list(BLAZE.assets)
RANGE = ["--from", "2024-03-01", "--to", "2024-03-08"]


def test_compact_ranges_joins_consecutive_days_across_months_and_years() -> None:
    days = ["2024-03-09", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08", "2024-05-01"]
    assert status.compact_ranges([*days, "2024-03-05"]) == [("2024-03-04", "2024-03-09"), ("2024-05-01", "2024-05-01")]
    assert status.format_ranges(status.compact_ranges(days)) == "2024-03-04..2024-03-09, 2024-05-01"
    assert status.compact_ranges(["2024-02-28", "2024-02-29", "2024-03-01", "2023-12-31", "2024-01-01"]) == [
        ("2023-12-31", "2024-01-01"),
        ("2024-02-28", "2024-03-01"),
    ]
    assert status.compact_ranges(["2023-02-28", "2023-03-02"]) == [
        ("2023-02-28", "2023-02-28"),
        ("2023-03-02", "2023-03-02"),
    ]
    assert status.compact_ranges([]) == [] and status.format_ranges([]) == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "20240301"], "--from '20240301' is not a date; write YYYY-MM-DD"),
        (["--to", "2024-W10-1"], "--to '2024-W10-1' is not a date; write YYYY-MM-DD"),
        (["--from", "2024-02-30"], "--from '2024-02-30' is not a date; write YYYY-MM-DD"),
        (["--from", "2024-3-01"], "--from '2024-3-01' is not a date; write YYYY-MM-DD"),
        (
            ["--from", "2024-03-05", "--to", "2024-03-01"],
            "the range is inverted: --from 2024-03-05 is after --to 2024-03-01; swap them",
        ),
        (
            ["nope"],
            "unknown source or asset 'nope'; choose a source (blaze, canton, racing) or an asset (blaze/transactions, ",
        ),
        (
            ["blaze", "--from", "2019-01-01", "--to", "2019-01-31"],
            "blaze has no partition for --from 2019-01-01 --to 2019-01-31; its partitions are 2023-01-01..",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    db_url: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"backfill-platform: {message}"), err


def test_bad_date_through_the_installed_command_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "backfill_platform.cli", "status", "--from", "20240301"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr == "backfill-platform: --from '20240301' is not a date; write YYYY-MM-DD\n"
    assert proc.stdout == ""


def test_rows_and_last_commit_come_from_each_partitions_latest_commit(db_url: str) -> None:
    """Written straight into the ledger: two lineages committed one day; the later commit counts."""
    drop_schemas(db_url, "blaze")
    t = [datetime(2024, 6, 1, h, tzinfo=UTC) for h in range(4)]
    rows = [
        ("2023-05-01", "run:a", "a", 10, t[0]),
        ("2023-05-01", "run:b", "b", 7, t[2]),  # the latest commit of 2023-05-01
        ("2023-05-02", "run:a", "a", 5, t[1]),
        ("2023-05-04", "run:c", "c", 3, t[3]),  # outside the range asked for: not counted
    ]
    with psycopg.connect(db_url) as conn:
        ledger.ensure(conn)
        conn.cursor().executemany(
            "INSERT INTO backfill_platform.ledger (asset, partition, lineage, run_id, rows, bytes, seconds, "
            "committed_at) VALUES ('blaze/transactions', %s, %s, %s, %s, 0, 0, %s)",
            rows,
        )
    [got] = status.report(db_url, [BLAZE], "blaze/transactions", date(2023, 5, 1), date(2023, 5, 3))
    assert got == status.AssetStatus(
        asset="blaze/transactions",
        source="blaze",
        first="2023-05-01",
        last="2023-05-03",
        partitions=3,
        materialized=[("2023-05-01", "2023-05-02")],
        missing=[("2023-05-03", "2023-05-03")],
        failed=[],
        materialized_count=2,
        missing_count=1,
        failed_count=0,
        rows=12,
        last_commit=t[2],
        last_run_id="b",
        last_run_status="unknown",
    )
    assert not got.complete


def run_range(instance: dg.DagsterInstance, sandbox, db_url: str, first: str, last: str) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(ASSETS, resources=resources(sandbox, db_url), instance=instance, tags=tags)


def day_rows(*days: str) -> tuple[int, int]:
    """Ground truth: transactions and cart items of these days."""
    sales = [t for d in days for t in truth.transactions_for_day(CFG.seed, date.fromisoformat(d))]
    return len(sales), sum(len(t["cart"]["items"]) for t in sales)


def last_commit(db_url: str, asset: str) -> tuple[datetime, str]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT committed_at, run_id FROM backfill_platform.ledger WHERE asset = %s "
            "ORDER BY committed_at DESC LIMIT 1",
            (asset,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.slow
def test_status_reports_the_gaps_a_real_run_left_then_complete(
    sandbox, db_url: str, dagster_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    drop_schemas(db_url, "blaze")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert run_range(instance, sandbox, db_url, "2024-03-01", "2024-03-03").success
        assert run_range(instance, sandbox, db_url, "2024-03-06", "2024-03-06").success
        # 2024-03-05 fails: the API answers a page of the wrong shape, nothing of the day is committed
        sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 200, "body": '{"unexpected": true}'}]})
        failed = dg.materialize(
            ASSETS,
            resources=resources(sandbox, db_url),
            instance=instance,
            partition_key="2024-03-05",
            raise_on_error=False,
        )
        assert not failed.success
        sandbox.reset()
        last_run = instance.get_run_by_id(last_commit(db_url, "blaze/transactions")[1])
        assert last_run is not None and last_run.status == dg.DagsterRunStatus.SUCCESS

    capsys.readouterr()  # the runs' own event stream

    # Human-readable: exactly the gaps, exit 2.
    assert main(["status", "blaze", *RANGE]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    sales, items = day_rows("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-06")
    at, run_id = last_commit(db_url, "blaze/transactions")
    at_items, run_items = last_commit(db_url, "blaze/transaction_items")
    assert run_id == run_items  # a day's sales and items commit together, in one run
    assert out.splitlines() == [
        "blaze/transactions: 4 partitions 2024-03-01..2024-03-03, 2024-03-06 of 8 in 2024-03-01..2024-03-08: "
        "3 missing, 1 failed",
        "  missing 2024-03-04, 2024-03-07..2024-03-08",
        "  failed  2024-03-05",
        f"  {sales:,} rows; last commit {at:%Y-%m-%d %H:%M:%S} by run {run_id} (SUCCESS)",
        "blaze/transaction_items: 4 partitions 2024-03-01..2024-03-03, 2024-03-06 of 8 in 2024-03-01..2024-03-08: "
        "3 missing, 1 failed",
        "  missing 2024-03-04, 2024-03-07..2024-03-08",
        "  failed  2024-03-05",
        f"  {items:,} rows; last commit {at_items:%Y-%m-%d %H:%M:%S} by run {run_id} (SUCCESS)",
    ]

    # --json: one document, the same figures; one asset selected by its key.
    assert main(["status", "blaze/transactions", *RANGE, "--json"]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == [
        {
            "asset": "blaze/transactions",
            "source": "blaze",
            "first": "2024-03-01",
            "last": "2024-03-08",
            "partitions": 8,
            "materialized": 4,
            "missing": 3,
            "failed": 1,
            "complete": False,
            "materialized_ranges": [["2024-03-01", "2024-03-03"], ["2024-03-06", "2024-03-06"]],
            "missing_ranges": [["2024-03-04", "2024-03-04"], ["2024-03-07", "2024-03-08"]],
            "failed_ranges": [["2024-03-05", "2024-03-05"]],
            "rows": sales,
            "last_commit": at.isoformat(),
            "last_run_id": run_id,
            "last_run_status": "SUCCESS",
        }
    ]

    # Without an instance: said once, the failed day counts as missing, run status unknown.
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home.parent / "no_such_home"))
    assert main(["status", "blaze", *RANGE, "--json"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("backfill-platform: no Dagster instance (")
    assert err.endswith("failed partitions are not counted and run status is unknown\n")
    doc = json.loads(out)
    assert [(a["asset"], a["missing"], a["failed"], a["last_run_status"]) for a in doc] == [
        ("blaze/transactions", 4, 0, "unknown"),
        ("blaze/transaction_items", 4, 0, "unknown"),
    ]
    assert doc[0]["missing_ranges"] == [["2024-03-04", "2024-03-05"], ["2024-03-07", "2024-03-08"]]

    # The default range runs from the configured first day to the latest complete partition.
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    assert main(["status", "blaze/transactions", "--json"]) == 2
    [whole] = json.loads(capsys.readouterr().out)
    first, last = BLAZE.config.start.isoformat(), BLAZE.partitions.get_last_partition_key()
    assert (whole["first"], whole["last"], whole["failed_ranges"]) == (first, last, [["2024-03-05", "2024-03-05"]])
    assert whole["missing_ranges"] == [
        [first, "2024-02-29"],
        ["2024-03-04", "2024-03-04"],
        ["2024-03-07", last],
    ]

    # The gaps filled: complete, exit 0.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert run_range(instance, sandbox, db_url, "2024-03-04", "2024-03-05").success
        assert run_range(instance, sandbox, db_url, "2024-03-07", "2024-03-08").success
    capsys.readouterr()
    assert main(["status", "blaze", *RANGE]) == 0
    out, _ = capsys.readouterr()
    sales, items = day_rows(*(f"2024-03-0{d}" for d in range(1, 9)))
    at, run_id = last_commit(db_url, "blaze/transactions")
    at_items, _ = last_commit(db_url, "blaze/transaction_items")
    assert out.splitlines() == [
        "blaze/transactions: 8 partitions 2024-03-01..2024-03-08 of 8 in 2024-03-01..2024-03-08: complete",
        f"  {sales:,} rows; last commit {at:%Y-%m-%d %H:%M:%S} by run {run_id} (SUCCESS)",
        "blaze/transaction_items: 8 partitions 2024-03-01..2024-03-08 of 8 in 2024-03-01..2024-03-08: complete",
        f"  {items:,} rows; last commit {at_items:%Y-%m-%d %H:%M:%S} by run {run_id} (SUCCESS)",
    ]
