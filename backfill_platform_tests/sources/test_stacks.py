"""Stacks against the sandbox: one walk per wallet, ground truth while blocks arrive, a growing wallet list,
empty wallets, non-final transactions revisited, a bad address, kill -9 and resume."""

from datetime import date

import dagster as dg
import psycopg
import pytest

from backfill_platform import status
from backfill_platform.cli import main
from backfill_platform.sandbox.generators import stacks as data
from backfill_platform.sources import load, named
from backfill_platform.sources.stacks.tables import WALLET_TRANSACTIONS
from backfill_platform_tests.sources.helpers import drop_schemas, kill_after_commits, partition_metadata
from backfill_platform_tests.sources.stacks_fixtures import (
    ASSET,
    BUSY,
    CFG,
    pages,
    range_tags,
    resources,
    stored,
    truth,
    wallet_assets,
)

FIRST, LAST = date(2026, 10, 22), date(2026, 10, 28)
DAYS = [date(2026, 10, d).isoformat() for d in range(22, 29)]
A, B, C = BUSY
V3 = "stacks v3/principals/transactions"
V2 = "stacks v2/addresses/transactions"
LOOKUP = "stacks v2/blocks/by-block-time"
CHECKS = named("stacks", load()).checks


@pytest.fixture
def clean(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BACKFILL_STACKS_START", FIRST.isoformat())
    return drop_schemas(db_url, "stacks")


def requests(sandbox, route: str) -> int:
    return sandbox.stats()["routes"].get(route, {}).get("requests", 0)


def expected(*wallets: str, revision: int = 0) -> dict:
    return {k: v for w in wallets for k, v in truth(w, FIRST, LAST, revision).items()}


def assert_rows_match(db_url: str, want: dict) -> None:
    got = stored(db_url)
    assert got.keys() == want.keys()
    for key, tx in want.items():
        height, status_, fee, sent, received, tx_type, contract, _ = got[key]
        assert (height, status_, str(fee), tx_type) == (
            tx["block_height"],
            tx["tx_status"],
            tx["fee_rate"],
            tx["tx_type"],
        )
        paid = tx["sender_address"] == key[0]
        amount = int(tx.get("token_transfer", {}).get("amount", 0))
        assert int(sent) == (amount + int(tx["fee_rate"]) if paid else 0)
        assert int(received) == (amount if tx.get("token_transfer", {}).get("recipient_address") == key[0] else 0)
        assert contract == tx.get("contract_call", {}).get("contract_id")


def test_two_wallets_over_a_week_land_ground_truth_while_blocks_arrive(sandbox, clean) -> None:
    sandbox.faults("stacks", {"shift_rows": 3})  # new blocks at the head on every deeper page
    result = dg.materialize(
        [*wallet_assets((A, B)), *CHECKS], resources=resources(sandbox.origin, clean), tags=range_tags(FIRST, LAST)
    )
    assert result.success
    assert_rows_match(clean, expected(A, B))
    # One walk per wallet from the range's end (one block lookup serves both), never one per day.
    assert requests(sandbox, V3) == pages(A, FIRST, LAST) + pages(B, FIRST, LAST)
    assert requests(sandbox, LOOKUP) == 1 and requests(sandbox, V2) == 0
    per_day = partition_metadata(result, WALLET_TRANSACTIONS.key)
    assert sorted(per_day) == DAYS
    assert sum(m["rows"] for m in per_day.values()) == len(expected(A, B))
    assert sum(m["api_calls"] for m in per_day.values()) == requests(sandbox, V3) + 1
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_without_v3_offset_pages_from_the_head_are_deduplicated(sandbox, clean) -> None:
    sandbox.faults(
        "stacks",
        {"shift_rows": 3, "scripted": [{"kind": "status", "status": 404, "route": "/transactions", "times": 1}]},
    )
    result = dg.materialize(
        wallet_assets((A, B)), resources=resources(sandbox.origin, clean), tags=range_tags(FIRST, LAST)
    )
    assert result.success
    assert_rows_match(clean, expected(A, B))
    assert requests(sandbox, V3) == 1 and requests(sandbox, V2) > 0


def test_adding_a_wallet_fetches_only_it_and_removing_one_keeps_its_rows(sandbox, clean, monkeypatch, capsys) -> None:
    res = resources(sandbox.origin, clean)
    monkeypatch.setenv("BACKFILL_STACKS_WALLETS", f"{A},{B},{C}")
    status_cli = ["status", "stacks", "--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    assert dg.materialize(wallet_assets((A, B)), resources=res, tags=range_tags(FIRST, LAST)).success
    loaded = load({"BACKFILL_STACKS_START": FIRST.isoformat(), "BACKFILL_STACKS_WALLETS": f"{A},{B},{C}"})
    stacks = named("stacks", loaded)
    before = status.report(clean, [stacks], "stacks", FIRST, LAST)[0]
    assert before.missing_count == 7 and before.materialized_count == 0  # C is in none of the committed days
    assert main(status_cli) == 2 and "7 missing" in capsys.readouterr().out
    sandbox.reset()
    # A fresh run (a new lineage) with the grown list: only C is walked.
    assert dg.materialize(wallet_assets((A, B, C)), resources=res, tags=range_tags(FIRST, LAST)).success
    assert requests(sandbox, V3) == pages(C, FIRST, LAST)
    assert_rows_match(clean, expected(A, B, C))
    assert status.report(clean, [stacks], "stacks", FIRST, LAST)[0].complete
    assert main(status_cli) == 0 and ": complete" in capsys.readouterr().out
    sandbox.reset()
    # A and B dropped from the list: nothing is due, nothing fetched, their rows stay.
    assert dg.materialize(wallet_assets((C,)), resources=res, tags=range_tags(FIRST, LAST)).success
    assert requests(sandbox, V3) == 0
    assert_rows_match(clean, expected(A, B, C))


def test_a_wallet_without_transactions_in_the_range_commits_empty_partitions(sandbox, clean, monkeypatch) -> None:
    quiet = next(w for w in data.wallets(CFG.seed, CFG.stacks_wallets) if not truth(w, FIRST, LAST))
    monkeypatch.setenv("BACKFILL_STACKS_START", "2026-06-01")  # the target lies before this run's range
    monkeypatch.setenv("BACKFILL_STACKS_WALLETS", quiet)
    result = dg.materialize(
        [*wallet_assets((quiet,)), *CHECKS], resources=resources(sandbox.origin, clean), tags=range_tags(FIRST, LAST)
    )
    assert result.success
    assert requests(sandbox, V3) == 1
    reach = next(c for c in result.get_asset_check_evaluations() if c.check_name == "wallet_history_reaches_start")
    assert not reach.passed and reach.severity == dg.AssetCheckSeverity.WARN
    assert reach.metadata["per_wallet"].value == {quiet: {"oldest_in_run": None, "newest_gap": "2026-10-21"}}
    assert reach.metadata["target"].value == "2026-06-01"
    with psycopg.connect(clean) as conn:
        ledger = conn.execute(
            "SELECT partition, rows, members FROM backfill_platform.ledger WHERE asset = %s ORDER BY partition",
            (ASSET,),
        ).fetchall()
    assert ledger == [(d, 0, [quiet]) for d in DAYS]


def test_non_final_transactions_keep_their_day_due_until_final(sandbox, clean) -> None:
    res = resources(sandbox.origin, clean)
    stacks = named("stacks", load({"BACKFILL_STACKS_START": FIRST.isoformat(), "BACKFILL_STACKS_WALLETS": f"{A},{B}"}))
    try:
        sandbox.set_revision("stacks", 1)  # some transactions listed as pending
        first = dg.materialize([*wallet_assets((A, B)), *CHECKS], resources=res, tags=range_tags(FIRST, LAST))
        pending = {k for k, tx in expected(A, B, revision=1).items() if tx["tx_status"] == "pending"}
        assert pending and {k for k, r in stored(clean).items() if r[1] == "pending"} == pending
        final_checks = [c for c in first.get_asset_check_evaluations() if c.check_name == "wallet_transactions_final"]
        due_days = {r[-1].date().isoformat() for k, r in stored(clean).items() if k in pending}
        # per day: a warning exactly on the days holding a pending transaction
        assert {c.partition for c in final_checks if not c.passed} == due_days
        assert {c.metadata["run_non_final"].value for c in final_checks} == {len(pending)}
        report = status.report(clean, [stacks], "stacks", FIRST, LAST)[0]
        assert report.missing_count == len(due_days) and not report.complete
        sandbox.set_revision("stacks", 2)  # they are final now
        sandbox.reset()
        assert dg.materialize(wallet_assets((A, B)), resources=res, tags=range_tags(FIRST, LAST)).success
        assert_rows_match(clean, expected(A, B, revision=2))
        assert 0 < requests(sandbox, V3) <= pages(A, FIRST, LAST) + pages(B, FIRST, LAST)
        assert status.report(clean, [stacks], "stacks", FIRST, LAST)[0].complete
        sandbox.reset()
        assert dg.materialize(wallet_assets((A, B)), resources=res, tags=range_tags(FIRST, LAST)).success
        assert requests(sandbox, V3) == 0  # every day final for both wallets: nothing is due any more
    finally:
        sandbox.set_revision("stacks", 0)


def test_an_invalid_address_fails_in_one_line_and_writes_nothing(sandbox, clean) -> None:
    bad = "SZ" + A[2:]  # the c32 alphabet, but no Stacks address version: the API answers 400
    with pytest.raises(Exception) as failure:
        dg.materialize(
            wallet_assets((A, bad)), resources=resources(sandbox.origin, clean), tags=range_tags(FIRST, LAST)
        )
    message = str(failure.value)
    assert f"wallet {bad!r} is not a valid Stacks address; fix BACKFILL_STACKS_WALLETS" in message
    assert "HTTP 400" in message and "\n" not in message.strip()
    assert stored(clean) == {}


@pytest.mark.slow
def test_killed_mid_walk_then_resumed_loses_and_doubles_nothing(sandbox, clean) -> None:
    # The walks hang after three pages: the newest days are committed by then, the run is killed in mid-walk.
    sandbox.faults("stacks", {"scripted": [{"kind": "slow", "seconds": 600, "after": 4}]})
    tags = range_tags(FIRST, LAST, **{"dagster/backfill": "stacks-kill"})
    script = f"""
        import dagster as dg
        from backfill_platform_tests.sources.stacks_fixtures import resources, wallet_assets
        dg.materialize(wallet_assets({(A, B)!r}), resources=resources({sandbox.origin!r}, {clean!r}, timeout_s=900),
                       tags={tags!r})
    """
    kill_after_commits(script, clean, ASSET, 1, settle_s=0.5)
    with psycopg.connect(clean) as conn:
        committed = [
            r[0] for r in conn.execute("SELECT partition FROM backfill_platform.ledger WHERE asset = %s", (ASSET,))
        ]
    assert 0 < len(committed) < 7
    sandbox.reset()
    result = dg.materialize(wallet_assets((A, B)), resources=resources(sandbox.origin, clean), tags=tags)
    assert result.success
    assert_rows_match(clean, expected(A, B))
    assert sorted(partition_metadata(result, WALLET_TRANSACTIONS.key)) == sorted(set(DAYS) - set(committed))
    with psycopg.connect(clean) as conn:
        per_day = conn.execute(
            "SELECT partition, count(*) FROM backfill_platform.ledger WHERE asset = %s GROUP BY 1", (ASSET,)
        ).fetchall()
    assert sorted(per_day) == [(d, 1) for d in DAYS]
