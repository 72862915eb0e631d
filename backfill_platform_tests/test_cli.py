"""The CLI: --help on every command, one-line errors for bad input."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date

import pytest

from backfill_platform.cli import build_parser, main

CLI = [sys.executable, "-m", "backfill_platform.cli"]


def _subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    parser = build_parser()

    def walk(p, prefix: list[str]) -> None:
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, child in action.choices.items():
                    paths.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(parser, [])
    return paths


@pytest.mark.parametrize("path", _subcommand_paths(), ids=lambda p: " ".join(p) or "root")
def test_help_on_every_command(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    assert "usage: backfill-platform" in capsys.readouterr().out


def test_dev_refuses_a_taken_port(db_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run([*CLI, "dev", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"port {port} is already taken" in proc.stderr and "Traceback" not in proc.stderr


def test_sandbox_command_prints_env_and_serves(tmp_path) -> None:
    import time

    import httpx

    from backfill_platform.sandbox.server import free_port

    port = free_port()
    proc = subprocess.Popen([*CLI, "sandbox", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert f"http://127.0.0.1:{port}" in lines[0]
        assert any(f"BACKFILL_BLAZE_BASE_URL=http://127.0.0.1:{port}/blaze" in line for line in lines)
        for _ in range(100):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats").status_code == 200
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        else:
            raise AssertionError("sandbox did not come up")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["blaze", "--from", "2024-03-05", "--to", "2024-03-01"], "the range is inverted: --from 2024-03-05 is after"),
        (["blaze", "--from", "2024-13-01", "--to", "2024-03-01"], "--from '2024-13-01' is not a date"),
        (["blaze", "--from", "2019-01-01", "--to", "2019-01-02"], "blaze partitions start at 2023-01-01"),
        (["blaze", "--from", "2024-01-01", "--to", "2099-01-02"], "has no complete partition 2099-01-02 yet"),
        (["nope", "--from", "2024-01-01", "--to", "2024-01-02"], "unknown source 'nope'"),
        (
            ["blaze", "--from", "2024-01-01", "--to", "2024-01-02", "--real"],
            "BACKFILL_BLAZE_PARTNER_KEY and BACKFILL_BLAZE_API_KEY are not set",
        ),
    ],
)
def test_backfill_bad_input_is_one_line_and_writes_nothing(db_url: str, args: list[str], message: str) -> None:
    import os

    import psycopg

    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_BLAZE_")}
    proc = subprocess.run([*CLI, "backfill", *args], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('blaze.transactions')").fetchone() == (None,)


@pytest.mark.slow
@pytest.mark.e2e
def test_backfill_is_an_asset_backfill_run_by_a_daemon_with_the_sandbox(db_url: str, tmp_path) -> None:
    """No credentials, no daemon running: the command starts the sandbox and a daemon for its duration, submits an
    asset backfill (the object the UI creates), follows it with progress lines and reports the partitions' figures."""
    import math
    import re
    from datetime import date

    import psycopg

    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.generators import blaze as truth

    env, proc = backfill_with_sandbox("blaze", "2024-03-01", "2024-03-02", db_url, tmp_path)
    assert re.search(r"^blaze: sandbox at http://127\.0\.0\.1:\d+/blaze$", proc.stdout, re.M), proc.stdout
    assert "a Dagster daemon runs for this command" in proc.stdout
    assert re.search(r"^blaze: 4/4 partitions done, 0 failed, 0 in flight", proc.stdout, re.M), proc.stdout
    assert "check blaze/transactions transactions_match_api_totals: passed" in proc.stdout
    backfill_id = re.search(r"^backfill (\w+): SUCCESS", proc.stdout, re.M)
    assert backfill_id is not None, proc.stdout
    with psycopg.connect(db_url) as conn:
        days = conn.execute("SELECT count(DISTINCT business_date) FROM blaze.transactions").fetchone()[0]
        backfill = conn.execute("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id.group(1),)).fetchone()
        runs = conn.execute(
            "SELECT r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
            "WHERE t.key = 'dagster/backfill' AND t.value = %s",
            (backfill_id.group(1),),
        ).fetchall()
    assert days == 2 and backfill == ("COMPLETED_SUCCESS",) and runs == [("SUCCESS",)]  # one single-run backfill run
    seed = SandboxConfig().seed
    expected = sum(len(truth.transactions_for_day(seed, date(2024, 3, d))) for d in (1, 2))
    # two days are one window: its pages and nothing more
    assert f"blaze/transactions: {expected:,} rows in 2 partitions, {math.ceil(expected / 100)} API calls" in (
        proc.stdout
    )
    assert "DEBUG" not in proc.stderr  # Dagster's event stream only with --verbose
    status = subprocess.run(
        [*CLI, "status", "blaze/transactions", "--from", "2024-03-01", "--to", "2024-03-02"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert status.returncode == 0, status.stdout + status.stderr


@pytest.mark.slow
def test_backfill_canton_lands_updates_and_events_through_the_cli(db_url: str, tmp_path) -> None:
    """A multi-asset source: both of its assets are selected, written and checked in one run."""

    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
    _, proc = backfill_with_sandbox("canton", "2024-07-01", "2024-07-02", db_url, tmp_path)
    assert "SUCCESS" in proc.stdout and "check canton/events events_unique_and_anchored: passed" in proc.stdout
    with psycopg.connect(db_url) as conn:
        updates, days = conn.execute(
            "SELECT count(*), count(DISTINCT record_time::date) FROM canton.updates"
        ).fetchone()
        (events,) = conn.execute("SELECT count(*) FROM canton.events").fetchone()
    from datetime import UTC, datetime

    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.generators import canton as truth

    cfg = SandboxConfig()
    start = datetime(2024, 7, 1, tzinfo=UTC)
    expected = truth.updates_in_window(cfg.seed, cfg.scale, start, start.replace(day=3))
    assert days == 2 and updates == len(expected)
    assert events == sum(len(u["events_by_id"]) if "events_by_id" in u else 1 for u in expected)
    assert f"canton/updates: {updates:,} rows in 2 partitions" in proc.stdout
    assert f"canton/events: {events:,} rows in 2 partitions" in proc.stdout


def test_a_second_backfill_of_held_wallet_days_succeeds_with_nothing_to_fetch(db_url: str, tmp_path) -> None:
    """A member table (Stacks) skips days that hold every wallet already: the re-run is a success, exit 0, with
    those partitions reported as held and the rows left as the first run wrote them."""
    import psycopg

    from backfill_platform_tests.sources.stacks_fixtures import BUSY, truth

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS stacks CASCADE")
    first, last = date(2026, 10, 26), date(2026, 10, 28)
    expected = {k for w in BUSY for k in truth(w, first, last)}
    _, once = backfill_with_sandbox("stacks", first.isoformat(), last.isoformat(), db_url, tmp_path)
    assert f"stacks/wallet_transactions: {len(expected):,} rows in 3 partitions" in once.stdout
    _, again = backfill_with_sandbox("stacks", first.isoformat(), last.isoformat(), db_url, tmp_path)
    assert ": SUCCESS (1 runs)" in again.stdout, again.stdout
    assert "stacks/wallet_transactions: 0 rows in 3 partitions (3 already held), 0 API calls" in again.stdout
    with psycopg.connect(db_url) as conn:
        stored = {tuple(r) for r in conn.execute("SELECT address, tx_id FROM stacks.wallet_transactions")}
    assert stored == expected


def backfill_with_sandbox(source: str, first: str, last: str, db_url: str, tmp_path) -> tuple[dict, object]:
    """`backfill-platform backfill` in a subprocess with no credentials for `source` (so the sandbox serves it)."""
    import os

    prefix = f"BACKFILL_{source.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    env.update(BACKFILL_DATABASE_URL=db_url, BACKFILL_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [*CLI, "backfill", source, "--from", first, "--to", last], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return env, proc


@pytest.mark.slow
@pytest.mark.e2e
def test_no_wait_follow_cancel_and_ctrl_c_detach(db_url: str, tmp_path) -> None:
    """--no-wait returns the id; --follow finishes it; --cancel cancels one; Ctrl-C detaches and says how to return."""
    import os
    import re
    import signal
    import time

    import psycopg

    prefix = "BACKFILL_BLAZE_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    env.update(BACKFILL_DATABASE_URL=db_url, BACKFILL_HOME=str(tmp_path / "home"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "backfill", *args], capture_output=True, text=True, timeout=300, env=env)

    def backfill_id(out: str) -> str:
        found = re.search(r"^backfill (\w+): ", out, re.M)
        assert found is not None, out
        return found.group(1)

    submitted = cli("blaze", "--from", "2024-05-01", "--to", "2024-05-02", "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    first = backfill_id(submitted.stdout)
    followed = cli("--follow", first)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert f"backfill {first}: SUCCESS" in followed.stdout

    other = backfill_id(cli("blaze", "--from", "2024-05-03", "--to", "2024-05-03", "--no-wait").stdout)
    canceled = cli("--cancel", other)
    assert canceled.returncode == 0 and f"backfill {other}: canceling" in canceled.stdout
    after_cancel = cli("--follow", other)
    assert after_cancel.returncode == 1 and f"backfill {other}: CANCELED" in after_cancel.stdout, after_cancel.stdout

    proc = subprocess.Popen(
        [*CLI, "backfill", "blaze", "--from", "2024-05-04", "--to", "2024-05-05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = ""
    deadline = time.monotonic() + 120
    while not line.startswith("backfill ") and time.monotonic() < deadline:
        line = proc.stdout.readline()
    detached = backfill_id(line)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"detached from backfill {detached}" in out and f"--follow {detached}" in out
    with psycopg.connect(db_url) as conn:
        statuses = dict(conn.execute("SELECT key, status FROM bulk_actions").fetchall())
    assert statuses[first] == "COMPLETED_SUCCESS" and statuses[other] in ("CANCELED", "CANCELING")
    assert statuses[detached] in ("REQUESTED", "COMPLETED_SUCCESS")  # not canceled: it goes on when a daemon runs
    # leave no work behind for the next daemon that serves this instance (another test's)
    assert cli("--cancel", detached).returncode == 0


@pytest.mark.slow
@pytest.mark.e2e
def test_a_rerun_of_a_failed_backfill_resumes_its_commits(sandbox, db_url: str, tmp_path) -> None:
    """The same command after a failed attempt continues it: only what the ledger does not hold is fetched."""
    import os
    import re
    from datetime import date, timedelta

    import psycopg

    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.env import credentials
    from backfill_platform.sandbox.generators import blaze as truth

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS blaze CASCADE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_BLAZE_")}
    env.update(
        BACKFILL_DATABASE_URL=db_url,
        BACKFILL_HOME=str(tmp_path / "home"),
        BACKFILL_BLAZE_BASE_URL=f"{sandbox.origin}/blaze",  # the session's sandbox stands in for the real API
        **{k: v for k, v in credentials(SandboxConfig()).items() if k.startswith("BACKFILL_BLAZE_")},
    )
    days = [date(2024, 7, 1) + timedelta(days=n) for n in range(10)]
    per_day = [len(truth.transactions_for_day(SandboxConfig().seed, d)) for d in days]
    first_window, second_window = -(-sum(per_day[:7]) // 100), -(-sum(per_day[7:]) // 100)
    # every attempt at the second window is refused: the run and both of Dagster's retries fail there
    sandbox.faults("blaze", {"scripted": [{"kind": "status", "status": 400, "times": 3, "after": first_window}]})
    args = [*CLI, "backfill", "blaze", "--from", "2024-07-01", "--to", "2024-07-10"]
    failed = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"error: blaze /api/v1/partner/transactions: HTTP 400", failed.stdout), failed.stdout
    calls_before = sandbox.stats()["routes"]["blaze transactions"]["requests"]
    assert calls_before == first_window + 3  # the first window once, then one refused call per attempt
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming after COMPLETED_FAILED backfill" in resumed.stdout, resumed.stdout
    calls = sandbox.stats()["routes"]["blaze transactions"]["requests"] - calls_before
    assert calls == second_window  # the missing window only (the totals check uses the totals the fetch saw)
    expected = {t["id"] for d in days for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM blaze.transactions")]
    assert sorted(stored) == sorted(expected)


def _kill_and_rerun(sandbox, db_url: str, tmp_path, kills: int, days: int) -> tuple[int, int]:
    """`kills` SIGKILLs of `backfill-platform backfill blaze` at seeded random moments of its life, then the same
    command to the end. Returns (calls made, calls of a clean run); asserts the ground truth in Postgres."""
    import os
    import random
    import signal
    import time
    from datetime import date, timedelta

    import psycopg

    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.env import credentials
    from backfill_platform.sandbox.generators import blaze as truth
    from backfill_platform.sources.blaze.client import windows

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS blaze CASCADE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_BLAZE_")}
    env.update(
        BACKFILL_DATABASE_URL=db_url,
        BACKFILL_HOME=str(tmp_path / "home"),
        BACKFILL_BLAZE_BASE_URL=f"{sandbox.origin}/blaze",
        **{k: v for k, v in credentials(SandboxConfig()).items() if k.startswith("BACKFILL_BLAZE_")},
    )
    first = date(2024, 8, 1)
    span = [first + timedelta(days=n) for n in range(days)]
    per_day = {d: len(truth.transactions_for_day(SandboxConfig().seed, d)) for d in span}
    window_calls = [-(-sum(per_day[d] for d in w) // 100) for w in windows(span)]
    clean = sum(window_calls)  # the checks make no calls: the totals check uses the totals the fetch saw
    args = [*CLI, "backfill", "blaze", "--from", span[0].isoformat(), "--to", span[-1].isoformat()]
    rng = random.Random(20261201)
    for _ in range(kills):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(2.0, 12.0))  # while starting, submitting, launching or fetching
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    again = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    calls = sandbox.stats()["routes"]["blaze transactions"]["requests"]
    # a kill can cost the window in flight, never a committed one
    assert clean <= calls <= clean + kills * max(window_calls), (calls, clean)
    expected = {t["id"] for d in span for t in truth.transactions_for_day(SandboxConfig().seed, d)}
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM blaze.transactions")]
    assert sorted(stored) == sorted(expected)  # nothing lost, nothing doubled
    print(f"{kills} kills over {days} days: {calls} calls, clean run {clean}: {calls / clean:.2f}x")
    return calls, clean


@pytest.mark.slow
@pytest.mark.e2e
def test_five_sigkills_of_the_command_then_the_same_command_lands_everything_once(
    sandbox, db_url: str, tmp_path
) -> None:
    """SIGKILL of `backfill-platform backfill` (and with it the daemon it runs) five times at random moments of a
    30-day range: the same command then continues the backfill, fetches no committed day again, and the rows equal
    the sandbox's truth."""
    _kill_and_rerun(sandbox, db_url, tmp_path, kills=5, days=30)


@pytest.mark.chaos
def test_twenty_sigkills_over_sixty_days(sandbox, db_url: str, tmp_path) -> None:
    """The README's chaos figure: `pytest -m chaos -s`."""
    _kill_and_rerun(sandbox, db_url, tmp_path, kills=20, days=60)
