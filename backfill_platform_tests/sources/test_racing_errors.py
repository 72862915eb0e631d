"""The Racing API's refusals and limits, each in one line: a rejected parameter, plans without racecards or old
results, ranges deeper than `skip` reaches, per-endpoint budgets, and each asset's own part of a backfill."""

from datetime import date, timedelta

import dagster as dg
import pytest

from backfill_platform.resources.apis import RacingApi
from backfill_platform.sandbox.apis.racing import STANDARD_SUFFIX
from backfill_platform.sources import load, named
from backfill_platform.sources.racing.tables import RACECARDS, RESULTS
from backfill_platform.summary import failure_line
from backfill_platform_tests.sources.helpers import partition_metadata
from backfill_platform_tests.sources.test_racing import (
    CARDS,
    CFG,
    DAYS,
    empty_racing,
    query,
    races,
    requests,
    resources,
)


@pytest.fixture
def clean(db_url: str) -> str:
    return empty_racing(db_url)


def test_a_rejected_parameter_fails_in_one_line_quoting_the_detail(sandbox, clean) -> None:
    assets = [a for a in named("racing", load({"BACKFILL_RACING_REGIONS": "gb,xx"})).assets if RESULTS.key in a.keys]
    result = dg.materialize(
        assets,
        selection=[RESULTS.key],
        resources=resources(sandbox, clean),
        partition_key="2024-05-02",
        raise_on_error=False,
    )
    assert not result.success
    assert failure_line(result.all_events) == (
        "racing /v1/results: the API rejected the request (HTTP 422): region: Invalid region code 'xx'; "
        "valid codes are listed by /v1/courses/regions (got 'xx')"
    )
    assert requests(sandbox, "results") == 1  # a 422 is not retried
    assert query(clean, "SELECT to_regclass('racing.results')") == [(None,)]


def test_racecards_on_a_plan_without_them_fail_in_one_line_naming_the_plan(sandbox, clean) -> None:
    res = resources(sandbox, clean, username=CFG.racing_username + STANDARD_SUFFIX)
    result = dg.materialize(
        CARDS, selection=[RACECARDS.key], resources=res, partition_key="2024-05-02", raise_on_error=False
    )
    assert not result.success
    line = failure_line(result.all_events) or ""
    assert line.startswith("racing /v1/racecards/pro: HTTP 401 Unauthorized: racecards need The Racing API's Pro plan")
    assert "\n" not in line and CFG.racing_password not in line


def test_per_endpoint_budgets_are_opt_in_and_the_default_is_2_per_second_for_the_whole_api(db_url: str) -> None:
    from backfill_platform.errors import ConfigurationError

    default = named("racing", load({}))
    api = default.source.resource(default.config)
    assert api.DEFAULT_RATE == "2/s" and api.route_rate("results") == ""
    per_endpoint = named("racing", load({"BACKFILL_RACING_RESULTS_RATE": "5/s", "BACKFILL_RACING_COURSES_RATE": "1/s"}))
    scoped = RacingApi(base_url="http://127.0.0.1:9", username="u", password="p", results_rate="5/s")
    try:
        results, cards = scoped.session("results"), scoped.session("racecards")
        assert results is not cards and cards is scoped.session()  # racecards keep the API's own budget
        assert results.budget is not None and results.budget.budget == "racing/results"
        assert [str(w) for w in results.budget.windows] == ["5/1s"]
    finally:
        scoped.teardown_after_execution(None)  # type: ignore[arg-type]
    assert per_endpoint.config["RESULTS_RATE"] == "5/s" and per_endpoint.config["RACECARDS_RATE"] == ""
    with pytest.raises(ConfigurationError, match="BACKFILL_RACING_RESULTS_RATE='fast' is not a rate"):
        load({"BACKFILL_RACING_RESULTS_RATE": "fast"})


def test_a_source_backfill_gives_each_asset_its_own_part_of_the_range() -> None:
    from backfill_platform.backfills import _selector
    from backfill_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    masters = _selector(graph, dg.AssetKey(["racing", "courses"]), "2015-01-01", "2024-12-31")
    assert masters is not None and masters.partitions is None  # the whole table, once
    cards = _selector(graph, RACECARDS.key, "2015-01-01", "2024-12-31")
    assert cards is not None and cards.partitions is not None
    assert [(r.start, r.end) for r in cards.partitions.ranges] == [("2023-01-23", "2024-12-31")]
    assert _selector(graph, RACECARDS.key, "2015-01-01", "2022-12-31") is None  # no racecard day: no call at all
    results = _selector(graph, RESULTS.key, "2015-01-01", "2024-12-31")
    assert results is not None and results.partitions is not None
    assert [(r.start, r.end) for r in results.partitions.ranges] == [("2015-01-01", "2024-12-31")]


def test_old_results_without_the_historical_add_on_fail_in_one_line_naming_it(sandbox, clean) -> None:
    res = resources(sandbox, clean, username=CFG.racing_username + STANDARD_SUFFIX)
    old = (date.today() - timedelta(days=400)).isoformat()
    result = dg.materialize(DAYS, selection=[RESULTS.key], resources=res, partition_key=old, raise_on_error=False)
    assert not result.success
    assert failure_line(result.all_events) == (
        "racing /v1/results: HTTP 401 Unauthorized: results need the Standard plan or above, and results older than "
        "12 months the Pro plan's historical add-on; upgrade, or set BACKFILL_RACING_START within the last 12 months"
    )


def test_a_range_deeper_than_skip_allows_is_halved(sandbox, clean, monkeypatch: pytest.MonkeyPatch) -> None:
    from backfill_platform.sources.racing import settings

    # With skip capped at 0 (the real cap is 20,000), a range fits only while it fits one page of 100.
    monkeypatch.setattr(settings, "RESULTS_MAX_SKIP", 0)
    first, last = date(2024, 12, 20), date(2024, 12, 23)  # 112 races: one probe, then two halves of 56
    tags = {"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)}
    result = dg.materialize(DAYS, selection=[RESULTS.key], resources=resources(sandbox, clean), tags=tags)
    assert result.success
    assert requests(sandbox, "results") == 3
    assert {r[0] for r in query(clean, "SELECT race_id FROM racing.results")} == {
        r["race_id"] for r in races(first, last)
    }
    assert {m["chunk_api_total"] for m in partition_metadata(result, RESULTS.key).values()} == {112}
