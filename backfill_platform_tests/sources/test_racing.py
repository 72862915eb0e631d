"""The Racing API against the sandbox: ground truth in every table with the fewest calls, paging past 100 races,
blank days, newest-wins entities, amended placings, plan and validation errors in one line."""

import math
from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from backfill_platform.io_managers import writer
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import RacingApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import racing as truth
from backfill_platform.sources import load, named
from backfill_platform.sources.racing import checks
from backfill_platform.sources.racing.tables import RACECARDS, RESULTS, RUNNERS
from backfill_platform_tests.sources.helpers import kill_after_commits, partition_metadata

CFG = SandboxConfig()
FIRST, LAST = date(2024, 12, 23), date(2024, 12, 27)  # two blank days and Boxing Day's 126 races inside
RANGE = {
    "dagster/asset_partition_range_start": FIRST.isoformat(),
    "dagster/asset_partition_range_end": LAST.isoformat(),
}
ALL = list(named("racing", load()).assets)
# Racecards start on 2023-01-23, results on BACKFILL_RACING_START: a run holds one partitions definition.
DAYS = [a for a in ALL if RACECARDS.key not in a.keys]
CARDS = [a for a in ALL if RACECARDS.key in a.keys]
CHECKS = named("racing", load()).checks
ENTITY_KEYS = [
    dg.AssetKey(["racing", t])
    for t in ("horses", "jockeys", "trainers", "owners", "sires", "dams", "damsires", "horse_pedigree")
]
ENTITY_KINDS = ("horse", "jockey", "trainer", "owner", "sire", "dam", "damsire")


def days(first: date = FIRST, last: date = LAST) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def races(first: date = FIRST, last: date = LAST, revision: int = 0) -> list[dict]:
    return [r for d in days(first, last) for r in truth.results_for_day(CFG.seed, d, revision)]


def resources(sandbox, db_url: str, username: str = CFG.racing_username, **kw) -> dict:
    racing = RacingApi(
        base_url=f"{sandbox.origin}/racing",
        username=username,
        password=CFG.racing_password,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        **kw,
    )
    return {"racing": racing, "io_manager": PostgresIOManager(database_url=db_url)}


def query(db_url: str, text: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(text).fetchall()  # type: ignore[arg-type]


def requests(sandbox, route: str) -> int:
    return sandbox.stats()["routes"].get(f"racing {route}", {}).get("requests", 0)


@pytest.fixture
def clean(db_url: str) -> str:
    return empty_racing(db_url)


def empty_racing(db_url: str) -> str:
    """The racing tables and the ledger emptied; the shared budget is kept, so it still knows the previous test's
    calls that the sandbox's 1-second window remembers (no test starts with a 429 earned by another)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS racing CASCADE")
        if conn.execute("SELECT to_regclass('backfill_platform.ledger')").fetchone() != (None,):
            conn.execute("DELETE FROM backfill_platform.ledger")
    writer._ensured.clear()
    return db_url


def latest_entities(all_races: list[dict]) -> dict[str, dict[str, str]]:
    """Per kind, id → name of its most recent race (the order the generator's races run in, by off time)."""
    out: dict[str, dict[str, str]] = {k: {} for k in ENTITY_KINDS}
    for race in sorted(all_races, key=lambda r: (r["date"], r["off_dt"], r["race_id"])):
        for runner in race["runners"]:
            for kind in ENTITY_KINDS:
                out[kind][runner[f"{kind}_id"]] = runner[kind]
    return out


def test_five_days_land_ground_truth_in_every_table_with_the_fewest_calls(sandbox, clean) -> None:
    result = dg.materialize([*DAYS, *CHECKS], resources=resources(sandbox, clean), tags=RANGE)
    assert result.success
    carded = dg.materialize(CARDS, resources=resources(sandbox, clean), tags=RANGE)
    assert carded.success
    expected = races()
    assert len(truth.results_for_day(CFG.seed, date(2024, 12, 26))) > 100
    got = dict(query(clean, "SELECT race_id, runner_count FROM racing.results"))
    assert got == {r["race_id"]: len(r["runners"]) for r in expected}
    runners = query(clean, "SELECT race_id, horse_id, position, jockey_id FROM racing.runners")
    assert sorted(runners) == sorted(
        (r["race_id"], x["horse_id"], x["position"], x["jockey_id"]) for r in expected for x in r["runners"]
    )
    for kind, names in latest_entities(expected).items():
        table = "horses" if kind == "horse" else f"{kind}s"
        assert dict(query(clean, f"SELECT id, name FROM racing.{table}")) == names, table
    pedigree = {x["horse_id"]: (x["sire_id"], x["dam_id"], x["damsire_id"]) for r in expected for x in r["runners"]}
    stored_pedigree = query(clean, "SELECT horse_id, sire_id, dam_id, damsire_id FROM racing.horse_pedigree")
    assert {h: tuple(p) for h, *p in stored_pedigree} == pedigree
    cards = [c for d in days() for c in truth.racecards_for_day(CFG.seed, d)]
    assert {r[0] for r in query(clean, "SELECT race_id FROM racing.racecards")} == {c["race_id"] for c in cards}
    assert query(clean, "SELECT count(*) FROM racing.racecard_runners")[0][0] == sum(len(c["runners"]) for c in cards)
    bookmakers = {o["bookmaker"] for c in cards for x in c["runners"] for o in x["odds"]}
    assert {r[0] for r in query(clean, "SELECT name FROM racing.bookmakers")} == bookmakers
    assert len(query(clean, "SELECT id FROM racing.courses")) == len(truth.courses(CFG.seed))
    assert len(query(clean, "SELECT region_code FROM racing.regions")) == len(truth.REGIONS)
    # The floor: one 5-day chunk of ⌈races / 100⌉ pages, a racecard call per day, one call per master.
    assert requests(sandbox, "results") == math.ceil(len(expected) / 100) == 2
    assert requests(sandbox, "racecards/pro") == len(days())
    assert requests(sandbox, "courses") == requests(sandbox, "courses/regions") == 1
    evaluations = result.get_asset_check_evaluations()  # one per check and day of the run, all passed
    assert sorted((e.check_name, e.partition) for e in evaluations) == sorted(
        (c.check_key.name, d.isoformat()) for c in CHECKS for d in days()
    )
    assert all(c.passed for c in evaluations)
    # Blank days commit empty partitions; each day's page shows its own races and its share of the chunk's calls.
    per_day = partition_metadata(result, RESULTS.key)
    assert sorted(per_day) == [d.isoformat() for d in days()]
    assert per_day["2024-12-25"]["rows"] == per_day["2024-12-24"]["rows"] == 0
    assert per_day["2024-12-26"]["rows"] == 126
    assert {m["chunk_api_total"] for m in per_day.values()} == {len(expected)}
    assert sum(m["api_calls"] for m in per_day.values()) == 2
    assert partition_metadata(carded, RACECARDS.key)["2024-12-25"]["rows"] == 0


def test_a_day_of_more_than_100_races_pages_with_skip(sandbox, clean) -> None:
    day = date(2024, 12, 26)
    result = dg.materialize(
        DAYS, selection=[RESULTS.key, RUNNERS.key], resources=resources(sandbox, clean), partition_key=day.isoformat()
    )
    assert result.success
    assert requests(sandbox, "results") == 2
    expected = truth.results_for_day(CFG.seed, day)
    assert len(expected) > 100
    assert {r[0] for r in query(clean, "SELECT race_id FROM racing.results")} == {r["race_id"] for r in expected}


def test_a_blank_day_commits_an_empty_partition(sandbox, clean) -> None:
    result = dg.materialize(
        DAYS, selection=[RESULTS.key], resources=resources(sandbox, clean), partition_key="2024-12-25"
    )
    assert result.success
    assert requests(sandbox, "results") == 1
    assert query(clean, "SELECT rows FROM backfill_platform.ledger WHERE asset = 'racing/results'") == [(0,)]


def test_newest_race_wins_whatever_the_loading_order(sandbox, clean) -> None:
    res = resources(sandbox, clean)
    new, old = date(2024, 5, 2), date(2019, 5, 1)
    for day in (new, old):  # the later day first, then an earlier one
        assert dg.materialize(
            DAYS, selection=[RESULTS.key, *ENTITY_KEYS], resources=res, partition_key=str(day)
        ).success
    newer = latest_entities(truth.results_for_day(CFG.seed, new))["horse"]
    older = latest_entities(truth.results_for_day(CFG.seed, old))["horse"]
    both = newer.keys() & older.keys()
    assert both and all(newer[h] != older[h] for h in both)  # the spelling changed between the two races
    stored = dict(query(clean, "SELECT id, name FROM racing.horses"))
    assert {h: stored[h] for h in both} == {h: newer[h] for h in both}
    assert all(stored[h] == older[h] for h in older.keys() - both)  # seen only in the older race: still stored
    dates = dict(query(clean, "SELECT id, race_date FROM racing.horses"))
    assert {dates[h] for h in both} == {new}


def test_an_amended_placing_shows_after_a_rerun_and_keeps_entities(sandbox, clean) -> None:
    res, day = resources(sandbox, clean), date(2024, 5, 2)
    assert dg.materialize(
        DAYS, selection=[RESULTS.key, RUNNERS.key, *ENTITY_KEYS], resources=res, partition_key=str(day)
    ).success
    horses_before = query(clean, "SELECT count(*) FROM racing.horses")[0][0]
    sandbox.set_revision("racing", 3)
    assert dg.materialize(
        DAYS, selection=[RESULTS.key, RUNNERS.key, *ENTITY_KEYS], resources=res, partition_key=str(day)
    ).success
    amended = truth.results_for_day(CFG.seed, day, revision=3)
    before = truth.results_for_day(CFG.seed, day)
    assert any(a["runners"][0]["horse_id"] != b["runners"][0]["horse_id"] for a, b in zip(amended, before, strict=True))
    winners = {r["race_id"]: r["runners"][0]["horse_id"] for r in amended if r["runners"][0]["position"] == "1"}
    stored = dict(query(clean, "SELECT race_id, horse_id FROM racing.runners WHERE position = '1'"))
    assert {k: stored.get(k) for k in winners} == winners
    assert query(clean, "SELECT count(*) FROM racing.horses")[0][0] == horses_before


def test_newest_wins_is_one_generic_upsert_condition() -> None:
    from backfill_platform.io_managers import sql as q
    from backfill_platform.sources.racing.tables import HORSES

    assert (
        q.upsert_tail(HORSES)
        .as_string(None)
        .endswith(
            'AND ("racing"."horses"."race_date" IS NULL OR EXCLUDED."race_date" >= "racing"."horses"."race_date")'
        )
    )


@pytest.mark.slow
def test_killed_mid_range_then_resumed_loses_and_doubles_nothing(sandbox, clean) -> None:
    first, last = date(2024, 5, 1), date(2024, 5, 10)
    chunks = [(first + timedelta(days=n), first + timedelta(days=n + 1)) for n in range(0, 10, 2)]
    assert all(len(races(a, b)) <= 100 for a, b in chunks)  # one call per 2-day chunk
    # The third chunk's request hangs: the run is killed there, after the first two chunks (four days) committed.
    sandbox.faults("racing", {"scripted": [{"kind": "slow", "seconds": 600, "after": 2, "route": "/v1/results"}]})
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        "dagster/backfill": "racing-kill",
    }
    selection = [RESULTS.key, RUNNERS.key, *ENTITY_KEYS]
    script = f"""
        import dagster as dg
        from dagster import AssetKey
        from backfill_platform_tests.sources.test_racing import DAYS, resources
        class S: origin = {sandbox.origin!r}
        dg.materialize(DAYS, selection={selection!r}, resources=resources(S, {clean!r}, timeout_s=900), tags={tags!r})
    """
    env = {"BACKFILL_RACING_CHUNK_DAYS": "2"}
    kill_after_commits(script, clean, "racing/results", 4, env=env, settle_s=1.0)  # the 2/s budget may hold the call
    assert requests(sandbox, "results") == 3
    sandbox.reset()
    resumed = [a for a in named("racing", load(env)).assets if RESULTS.key in a.keys]
    result = dg.materialize(resumed, selection=selection, resources=resources(sandbox, clean), tags=tags)
    assert result.success
    assert requests(sandbox, "results") == 3  # the last three chunks only: nothing committed is asked for again
    expected = races(first, last)
    assert sorted(r[0] for r in query(clean, "SELECT race_id FROM racing.results")) == sorted(
        r["race_id"] for r in expected
    )
    assert query(clean, "SELECT count(*) FROM racing.runners")[0][0] == sum(len(r["runners"]) for r in expected)
    assert dict(query(clean, "SELECT id, name FROM racing.horses")) == latest_entities(expected)["horse"]
    ledger = query(clean, "SELECT partition, run_id FROM backfill_platform.ledger WHERE asset = 'racing/results'")
    assert len(ledger) == 10 and [r for _, r in ledger].count(result.run_id) == 6


def test_checks_fail_on_what_they_guard_within_the_run_s_day_only(sandbox, clean) -> None:
    res, day = resources(sandbox, clean), "2024-05-02"
    assert dg.materialize(DAYS, selection=[RESULTS.key, RUNNERS.key, *ENTITY_KEYS], resources=res, partition_key=day)
    with psycopg.connect(clean, autocommit=True) as conn:
        conn.execute("DELETE FROM racing.jockeys WHERE id = (SELECT min(jockey_id) FROM racing.runners)")
        conn.execute("DELETE FROM racing.runners WHERE race_id = (SELECT min(race_id) FROM racing.results)")
    only_checks = dg.AssetSelection.checks(checks.runner_entities_exist.key, checks.results_have_runners.key)
    # Checks alone are unpartitioned: the run's day comes from the same tag a one-day run carries.
    result = dg.materialize([*DAYS, *CHECKS], selection=only_checks, resources=res, tags={"dagster/partition": day})
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {e.partition for e in verdicts.values()} == {day}
    assert not verdicts["runner_entities_exist"].passed and not verdicts["results_have_runners"].passed
    assert verdicts["runner_entities_exist"].metadata["details"].value["jockeys"] == 1
    assert verdicts["results_have_runners"].metadata["run_races_without_runners"].value == 1
    other = dg.materialize(
        [*DAYS, *CHECKS], selection=only_checks, resources=res, tags={"dagster/partition": "2024-05-03"}
    )
    elsewhere = {e.check_name: e for e in other.get_asset_check_evaluations()}["results_have_runners"]
    assert elsewhere.passed and elsewhere.metadata["run_races"].value == 0  # another day's run does not see this gap
