"""Blaze simulator: the Partner API's transactions endpoint, its errors, paging and late voids."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from backfill_platform.sandbox.generators import blaze as data
from backfill_platform_tests.sandbox.helpers import BLAZE, BLAZE_PATH, CONFIG, get
from backfill_platform_tests.sandbox.spec import definition, validate

SPEC = "blaze-partner-api.swagger.json"


def _window(origin: str, start: str, end: str, **params) -> list[dict]:
    rows, skip = [], 0
    while True:
        page = get(
            origin,
            BLAZE_PATH,
            params={"startDate": start, "endDate": end, "skip": skip, "limit": 100, **params},
            headers=BLAZE,
        ).json()
        if not page["values"]:
            return rows
        rows.extend(page["values"])
        skip += len(page["values"])


def test_page_matches_swagger_and_caps_limit(sandbox) -> None:
    r = get(
        sandbox.origin,
        BLAZE_PATH,
        params={"startDate": "03/01/2024", "endDate": "03/07/2024", "limit": 500},
        headers=BLAZE,
    )
    assert r.status_code == 200
    body = r.json()
    validate(definition(SPEC, "SearchResultTransaction"), body)
    assert body["limit"] == 100 and len(body["values"]) == 100 and body["skip"] == 0
    tx = body["values"][0]
    assert isinstance(tx["processedTime"], int) and tx["cart"]["items"] and isinstance(tx["cart"]["total"], float)
    assert len(tx["id"]) == 24


def test_paging_a_window_returns_the_ground_truth(sandbox) -> None:
    rows = _window(sandbox.origin, "03/01/2024", "03/03/2024")
    truth = [t for d in range(1, 4) for t in data.transactions_for_day(CONFIG.seed, date(2024, 3, d))]
    assert [r["id"] for r in rows] == [t["id"] for t in truth]
    assert sandbox.stats()["apis"]["blaze"]["requests"] == len(truth) // 100 + 2  # full pages, tail, empty page


def test_auth_and_argument_errors_match_the_real_api(sandbox) -> None:
    o = sandbox.origin
    no_key = get(o, BLAZE_PATH, params={"startDate": "03/01/2024", "endDate": "03/02/2024"})
    assert no_key.status_code == 401 and no_key.json()["status"] == 401
    alt_header = {"x-api-key": CONFIG.blaze_partner_key, "Authorization": CONFIG.blaze_api_key}
    assert (
        get(o, BLAZE_PATH, params={"startDate": "03/01/2024", "endDate": "03/02/2024"}, headers=alt_header).status_code
        == 200
    )
    wrong_store = get(o, BLAZE_PATH, headers={**BLAZE, "Authorization": "Bearer " + CONFIG.blaze_api_key})
    assert wrong_store.status_code == 401
    too_long = get(o, BLAZE_PATH, params={"startDate": "03/01/2024", "endDate": "03/09/2024"}, headers=BLAZE)
    assert too_long.status_code == 400
    assert too_long.json() == {"error": "Invalid argument", "message": "Date range cannot exceed 7 days", "status": 400}
    iso = get(o, BLAZE_PATH, params={"startDate": "2024-03-01", "endDate": "03/02/2024"}, headers=BLAZE)
    assert iso.status_code == 400 and "MM/dd/yyyy" in iso.json()["message"]


def test_no_dates_means_the_last_seven_days(sandbox) -> None:
    body = get(sandbox.origin, BLAZE_PATH, headers=BLAZE).json()
    today = datetime.now(data.SHOP_TZ).date()  # the shop's day, not the machine's: CI may run near midnight
    assert body["total"] > 0
    days = {data.transactions_for_day(CONFIG.seed, today - timedelta(days=n))[0]["id"] for n in range(8)}
    assert body["values"][0]["id"] in days


def test_late_void_changes_a_refetched_day(sandbox) -> None:
    before = {t["id"]: t for t in _window(sandbox.origin, "03/05/2024", "03/05/2024")}
    sandbox.set_revision("blaze", 1)
    after = {t["id"]: t for t in _window(sandbox.origin, "03/05/2024", "03/05/2024")}
    voided = [i for i in after if after[i]["status"] == "Void"]
    assert before.keys() == after.keys() and voided
    assert all(before[i]["status"] == "Completed" for i in voided)
    shrunk = [i for i in after if len(after[i]["cart"]["items"]) < len(before[i]["cart"]["items"])]
    assert shrunk


def test_shifting_offsets_duplicate_rows_across_pages(sandbox) -> None:
    sandbox.faults("blaze", {"shift_rows": 3})
    rows = _window(sandbox.origin, "03/01/2024", "03/01/2024")
    ids = [r["id"] for r in rows]
    truth = {t["id"] for t in data.transactions_for_day(CONFIG.seed, date(2024, 3, 1))}
    assert len(ids) > len(set(ids))  # duplicates across page boundaries
    assert set(ids) == truth  # paging to the empty page still sees every row
