"""Racing API simulator: Basic auth, FastAPI 422s, courses, regions, racecards and results against the spec."""

from __future__ import annotations

from datetime import date

from backfill_platform.sandbox.apis.racing import STANDARD_SUFFIX, basic
from backfill_platform.sandbox.generators import racing as data
from backfill_platform_tests.sandbox.helpers import CONFIG, RACING, get
from backfill_platform_tests.sandbox.spec import response_schema, validate

SPEC = "racing-api.openapi.yml"


def _get(sandbox, path: str, **params):
    import time

    time.sleep(0.5)  # the simulator enforces 2 requests/s, as the real API does
    return get(sandbox.origin, f"/racing/v1{path}", params=params, headers=RACING)


def test_reference_endpoints_match_the_spec(sandbox) -> None:
    courses = _get(sandbox, "/courses").json()
    validate(response_schema(SPEC, "/v1/courses"), courses, openapi_31=True)
    assert courses["total"] == len(courses["courses"]) and courses["courses"][0]["id"].startswith("crs_")
    regions = _get(sandbox, "/courses/regions").json()
    validate(response_schema(SPEC, "/v1/courses/regions"), regions, openapi_31=True)
    assert {"region": "Great Britain", "region_code": "gb"} in regions


def test_results_page_matches_the_spec_and_ground_truth(sandbox) -> None:
    body = _get(sandbox, "/results", start_date="2024-05-01", end_date="2024-05-01", limit=100).json()
    validate(response_schema(SPEC, "/v1/results"), body, openapi_31=True)
    truth = data.results_for_day(CONFIG.seed, date(2024, 5, 1))
    assert [r["race_id"] for r in body["results"]] == [r["race_id"] for r in truth][:100]
    runner = body["results"][0]["runners"][0]
    assert runner["horse_id"].startswith("hrs_") and runner["sire_id"].startswith("sir_")
    assert isinstance(runner["weight_lbs"], str)
    assert ["start_date", "2024-05-01"] in body["query"]


def test_racecards_pro_match_the_spec_and_carry_bookmakers(sandbox) -> None:
    body = _get(sandbox, "/racecards/pro", date="2024-05-01").json()
    validate(response_schema(SPEC, "/v1/racecards/pro"), body, openapi_31=True)
    odds = body["racecards"][0]["runners"][0]["odds"]
    assert odds and odds[0]["bookmaker"] in data.BOOKMAKERS
    early = _get(sandbox, "/racecards/pro", date="2023-01-01")
    assert early.status_code == 422


def test_validation_errors_are_fastapi_422(sandbox) -> None:
    r = _get(sandbox, "/results", limit=101)
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["query", "limit"] and detail["type"] == "less_than_equal"
    assert _get(sandbox, "/results", start_date="2023-01-01", end_date="2024-06-01").status_code == 422
    assert _get(sandbox, "/results", start_date="01/05/2024").status_code == 422
    assert _get(sandbox, "/results", skip=20_001).status_code == 422


def test_basic_auth_required(sandbox) -> None:
    r = get(sandbox.origin, "/racing/v1/courses", auth=("sandbox", "wrong"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Basic"


def test_entities_recur_across_days() -> None:
    horses = [
        {r["horse_id"] for race in data.results_for_day(CONFIG.seed, date(2024, 5, d)) for r in race["runners"]}
        for d in range(1, 15)
    ]
    assert set.intersection(horses[0], set.union(*horses[1:]))


def test_amended_result_changes_on_refetch(sandbox) -> None:
    before = {r["race_id"]: r for r in data.results_for_day(CONFIG.seed, date(2024, 5, 2))}
    after = {r["race_id"]: r for r in data.results_for_day(CONFIG.seed, date(2024, 5, 2), revision=3)}
    changed = [rid for rid in before if before[rid]["runners"][0]["horse_id"] != after[rid]["runners"][0]["horse_id"]]
    assert changed and before.keys() == after.keys()


def test_a_date_range_pages_with_skip_across_days_newest_first(sandbox) -> None:
    first = _get(sandbox, "/results", start_date="2024-12-23", end_date="2024-12-27", limit=100).json()
    rest = _get(sandbox, "/results", start_date="2024-12-23", end_date="2024-12-27", limit=100, skip=100).json()
    validate(response_schema(SPEC, "/v1/results"), rest, openapi_31=True)
    truth = [r for d in (23, 26, 27) for r in data.results_for_day(CONFIG.seed, date(2024, 12, d))]
    assert first["total"] == rest["total"] == len(truth) > 100
    got = first["results"] + rest["results"]
    assert sorted(r["race_id"] for r in got) == sorted(r["race_id"] for r in truth)
    assert [r["date"] for r in got] == sorted((r["date"] for r in got), reverse=True)


def test_blank_days_and_boxing_day() -> None:
    assert data.results_for_day(CONFIG.seed, date(2024, 12, 25)) == []
    assert data.racecards_for_day(CONFIG.seed, date(2024, 12, 24)) == []
    assert len(data.results_for_day(CONFIG.seed, date(2023, 12, 26))) > 100


def test_a_standard_plan_gets_results_but_401_on_pro_racecards(sandbox) -> None:
    standard = {"Authorization": basic(CONFIG.racing_username + STANDARD_SUFFIX, CONFIG.racing_password)}
    import time

    time.sleep(0.5)
    assert get(sandbox.origin, "/racing/v1/results", params={"limit": 1}, headers=standard).status_code == 200
    time.sleep(0.5)
    refused = get(sandbox.origin, "/racing/v1/racecards/pro", params={"date": "2024-05-01"}, headers=standard)
    assert refused.status_code == 401 and "Pro plan" in refused.json()["detail"]


def test_an_unknown_region_code_is_a_422_naming_it(sandbox) -> None:
    r = _get(sandbox, "/results", region=["gb", "xx"])
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "region"] and "'xx'" in r.json()["detail"][0]["msg"]


def test_horse_names_change_spelling_over_the_years() -> None:
    assert data.horse_name(5, date(2019, 5, 1)) != data.horse_name(5, date(2024, 5, 1))
