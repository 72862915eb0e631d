"""End to end through the daemon and the UI: one `backfill-platform dev` session, a partition backfill of every source
launched exactly as the Dagster UI launches it, its rows against the sandbox's truth, and the rendered UI in Chromium.
Set UI_SCREENSHOTS=DIR to keep the browser check's PNGs (benchmarks/screenshots.py writes docs/ui-*.png that way)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import blaze as truth
from backfill_platform.sandbox.generators import canton as scan
from backfill_platform.sandbox.generators import racing
from backfill_platform.sandbox.generators import stacks as hiro
from backfill_platform.sandbox.server import free_port
from backfill_platform.sources import SOURCES
from backfill_platform.sources.alpaca import settings as alpaca_settings
from backfill_platform_tests.e2e.browser import browser, chromium
from backfill_platform_tests.e2e.ui import CHECK_STATUSES, DAYS, LOCATION, RUNS, check_pages, finish, gql, launch, wait
from backfill_platform_tests.sources import stacks_fixtures
from backfill_platform_tests.sources.test_alpaca import expected as alpaca_truth


@dataclass
class DevSession:
    ui: str
    proc: subprocess.Popen
    printed: list[str]
    backfill_id: str
    status: str
    env: dict[str, str]
    stopped_after: float = 0.0


@pytest.fixture(scope="module")
def dev_backfill(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSession]:
    """`backfill-platform dev` with no credentials (so every source on the sandbox) and one UI-style backfill of every
    source, finished; the UI stays up for the tests, then dev is stopped with SIGTERM and timed."""
    tmp_path = tmp_path_factory.mktemp("dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not any(k.startswith(f"BACKFILL_{s.name.upper()}_") for s in SOURCES)}
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
    ui = f"http://127.0.0.1:{port}"
    graphql = f"{ui}/graphql"
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline().strip() for _ in SOURCES]
        wait(
            lambda: any(
                e["loadStatus"] == "LOADED" for e in gql(graphql, LOCATION)["workspaceOrError"]["locationEntries"]
            ),
            120,
            "the code location",
            proc,
        )
        rng = {"range": {"start": DAYS[0], "end": DAYS[-1]}}
        scan_days = {"range": {"start": "2024-12-09", "end": "2024-12-11"}}  # across two overlapping migrations
        market_days = {"range": {"start": "2024-03-08", "end": "2024-03-12"}}  # a weekend and a DST change inside
        chain_days = {"range": {"start": "2026-10-26", "end": "2026-10-28"}}
        backfill_id = launch(
            graphql,
            {
                "partitionsByAssets": [
                    {"assetKey": {"path": ["blaze", "transactions"]}, "partitions": rng},
                    {"assetKey": {"path": ["blaze", "transaction_items"]}, "partitions": rng},
                    {"assetKey": {"path": ["canton", "updates"]}, "partitions": scan_days},
                    {"assetKey": {"path": ["canton", "events"]}, "partitions": scan_days},
                    {"assetKey": {"path": ["racing", "results"]}, "partitions": rng},
                    {"assetKey": {"path": ["alpaca", "bars_1day"]}, "partitions": market_days},
                    {"assetKey": {"path": ["stacks", "wallet_transactions"]}, "partitions": chain_days},
                ]
            },
        )
        session = DevSession(ui, proc, printed, backfill_id, finish(graphql, backfill_id, proc), env)
        yield session
    finally:
        signalled = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stopped_after = time.monotonic() - signalled
    assert stopped_after < 10, f"backfill-platform dev took {stopped_after:.1f} s to stop after SIGTERM"


@pytest.mark.e2e
@pytest.mark.slow
def test_ui_backfills_through_backfill_platform_dev_land_every_source(dev_backfill: DevSession, db_url: str) -> None:
    """`backfill-platform dev` with no credentials: it runs the sandbox and gives the webserver, the daemon and the
    run workers its URLs and keys. A backfill launched as the UI launches it lands every source's ground truth.
    (Dagster's retry of a failed daemon run resuming from the ledger: e2e/test_dead_run_worker.py.)"""
    for source, line in zip(SOURCES, dev_backfill.printed, strict=True):
        assert line.startswith(f"{source.name}: sandbox at http://127.0.0.1:"), dev_backfill.printed
    assert dev_backfill.status in ("COMPLETED", "COMPLETED_SUCCESS")
    backfill_id = dev_backfill.backfill_id
    blaze_days = [date(2024, 3, 1) + timedelta(days=n) for n in range(3)]
    expected = {t["id"] for d in blaze_days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT id FROM blaze.transactions WHERE business_date < '2024-04-01'")}
        scan_ids = [
            r[0] for r in conn.execute("SELECT update_id FROM canton.updates ORDER BY migration_id, record_time")
        ]
        scan_events = conn.execute("SELECT count(*) FROM canton.events").fetchone()[0]
        lineages = conn.execute("SELECT lineage, count(*) FROM backfill_platform.ledger GROUP BY 1").fetchall()
        race_ids = {r[0] for r in conn.execute("SELECT race_id FROM racing.results")}
        bars = {(r[0], r[1]) for r in conn.execute("SELECT symbol, t FROM alpaca.bars_1day")}
        wallet_txs = {(r[0], r[1]) for r in conn.execute("SELECT address, tx_id FROM stacks.wallet_transactions")}
    assert stored == expected
    first = datetime(2024, 12, 9, tzinfo=UTC)
    scan_truth = scan.updates_in_window(SandboxConfig().seed, SandboxConfig().scale, first, first + timedelta(days=3))
    assert scan_ids == [u["update_id"] for u in scan_truth]  # the multi-asset ran as one single-run backfill run
    assert scan_events == sum(len(u["events_by_id"]) if "events_by_id" in u else 1 for u in scan_truth)
    assert race_ids == {r["race_id"] for d in blaze_days for r in racing.results_for_day(SandboxConfig().seed, d)}
    symbols = alpaca_settings.SYMBOLS.split(",")
    assert bars == set(alpaca_truth(symbols, "1Day", date(2024, 3, 8), date(2024, 3, 12)))
    wallets = hiro.busy_wallets(SandboxConfig().seed)
    chain = {k for w in wallets for k in stacks_fixtures.truth(w, date(2026, 10, 26), date(2026, 10, 28))}
    assert wallet_txs == chain and chain
    # one lineage: blaze 2 assets x 3 days, canton 2 x 3, racing 3, alpaca 5 (weekend days commit empty), stacks 3
    assert lineages == [(f"backfill:{backfill_id}", 23)]
    # the UI shows each check of days per partition: Blaze's checks passed on each backfilled day, none failed
    node = gql(f"{dev_backfill.ui}/graphql", CHECK_STATUSES, {"key": {"path": ["blaze", "transactions"]}})
    checks = [c for c in node["assetNodeOrError"]["assetChecksOrError"]["checks"] if c["name"] != "fresh"]
    assert sorted(c["name"] for c in checks) == ["transactions_match_api_totals", "transactions_unique_ids"]
    for check in checks:
        ranges = check["partitionStatuses"]["ranges"]
        assert [(r["startKey"], r["endKey"], r["status"]) for r in ranges] == [(DAYS[0], DAYS[-1], "SUCCEEDED")]


@pytest.mark.e2e
@pytest.mark.slow
def test_the_cli_follows_a_backfill_launched_from_the_ui(dev_backfill: DevSession, db_url: str) -> None:
    """`backfill --follow ID` on a UI backfill (no platform tags, five sources, a different range per asset): its
    report counts each asset's own targeted partitions and the rows the ledger holds for them."""
    proc = subprocess.run(
        [sys.executable, "-m", "backfill_platform.cli", "backfill", "--follow", dev_backfill.backfill_id],
        capture_output=True,
        text=True,
        timeout=120,
        env=dev_backfill.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert f"backfill {dev_backfill.backfill_id}: SUCCESS" in proc.stdout, proc.stdout
    with psycopg.connect(db_url) as conn:
        updates = conn.execute("SELECT count(*) FROM canton.updates").fetchone()[0]
        bars = conn.execute("SELECT count(*) FROM alpaca.bars_1day").fetchone()[0]
    assert f"  canton/updates: {updates:,} rows in 3 partitions" in proc.stdout, proc.stdout
    assert f"  alpaca/bars_1day: {bars:,} rows in 5 partitions" in proc.stdout, proc.stdout
    assert "  blaze/transactions: " in proc.stdout and "  stacks/wallet_transactions: " in proc.stdout


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None,
    reason="no `chromium` on PATH: install Debian's package (`apt-get install chromium`; .ci/run does)",
)
def test_the_ui_shows_the_backfilled_partitions_materialized_and_the_run_green(
    dev_backfill: DevSession, tmp_path: Path
) -> None:
    """Headless Chromium on the same UI: Blaze's backfilled days show materialized, its run green."""
    binary = chromium()
    assert binary is not None
    assert dev_backfill.status == "COMPLETED_SUCCESS"
    runs = gql(f"{dev_backfill.ui}/graphql", RUNS, {"id": dev_backfill.backfill_id})["runsOrError"]["results"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    # single-run backfill policy: one run for Blaze's whole range
    [blaze_run] = [r for r in runs if ["blaze", "transactions"] in [a["path"] for a in r["assetSelection"] or []]]
    shots = tmp_path / "shots"
    shots.mkdir()
    with browser(binary, tmp_path / "chromium") as page:
        check_pages(page, dev_backfill.ui, dev_backfill.backfill_id, blaze_run["runId"], shots)
    if target := os.environ.get("UI_SCREENSHOTS"):
        for png in shots.iterdir():
            shutil.copy(png, Path(target) / png.name)
