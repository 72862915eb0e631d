"""Paging helpers: the fewest calls in the normal case, no loss or duplicates when offsets shift.

Every test pins the exact rows (in order), the exact pages and the exact calls made, so a helper that stops a page
early, makes one call too many, or yields a row twice fails.
"""

from __future__ import annotations

from typing import Any

from backfill_platform.resources import pagination


def _offset_api(rows: list[int], shift: int = 0, total: int | None = None):
    """skip/limit over `rows`; `shift` rows arrive at the head once paging started, so later pages repeat rows."""
    calls: list[int] = []

    def fetch(skip: int, limit: int) -> dict:
        calls.append(skip)
        lo = max(0, skip - shift) if skip else 0
        return {"values": [{"id": r} for r in rows[lo : lo + limit]], "total": len(rows) if total is None else total}

    return fetch, calls


def _ids(page: list[dict]) -> list[int]:
    return [r["id"] for r in page]


def test_skip_limit_stops_at_total_without_an_extra_call() -> None:
    fetch, calls = _offset_api(list(range(250)))
    pages = list(pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]))
    assert [_ids(p) for p in pages] == [list(range(100)), list(range(100, 200)), list(range(200, 250))]
    assert calls == [0, 100, 200]


def test_skip_limit_survives_shifting_offsets() -> None:
    # skip 100 serves rows 97..196 (97..99 again), skip 200 serves 197..249: every row once, no extra call.
    fetch, calls = _offset_api(list(range(250)), shift=3)
    pages = list(pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]))
    assert [_ids(p) for p in pages] == [list(range(100)), list(range(100, 197)), list(range(197, 250))]
    assert calls == [0, 100, 200]


def test_skip_limit_pages_on_when_duplicates_leave_it_short_of_total() -> None:
    # 60 rows arrive: after three pages only 240 of 250 are distinct, so a fourth page is needed (and no fifth).
    fetch, calls = _offset_api(list(range(250)), shift=60)
    pages = list(pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]))
    assert [_ids(p) for p in pages] == [
        list(range(100)),
        list(range(100, 140)),
        list(range(140, 240)),
        list(range(240, 250)),
    ]
    assert calls == [0, 100, 200, 300]


def test_skip_limit_stops_on_an_empty_page_when_total_overstates() -> None:
    fetch, calls = _offset_api(list(range(150)), total=200)
    pages = list(pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]))
    assert [_ids(p) for p in pages] == [list(range(100)), list(range(100, 150))]
    assert calls == [0, 100, 150]


def test_token_pages_follow_until_null() -> None:
    tokens: dict[str | None, str | None] = {None: "a", "a": "b", "b": None}
    calls: list[str | None] = []

    def fetch(token: str | None) -> dict[str, Any]:
        calls.append(token)
        return {"t": token, "next_page_token": tokens[token]}

    pages = list(pagination.token_pages(fetch))
    assert pages == [
        {"t": None, "next_page_token": "a"},
        {"t": "a", "next_page_token": "b"},
        {"t": "b", "next_page_token": None},
    ]
    assert calls == [None, "a", "b"]


def _after_api(data: list[int]):
    """Ascending items after a body cursor (the last item's `n`); None starts at the beginning."""
    calls: list[int | None] = []

    def fetch(after: int | None) -> list[dict[str, int]]:
        calls.append(after)
        lo = 0 if after is None else after + 1
        return [{"n": n} for n in data[lo : lo + 10]]

    return fetch, calls


def test_after_last_ends_on_a_short_page() -> None:
    fetch, calls = _after_api(list(range(25)))
    pages = list(pagination.after_last_pages(fetch, 10, lambda i: i["n"]))
    assert [[i["n"] for i in p] for p in pages] == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert calls == [None, 9, 19]


def test_after_last_ends_on_an_empty_page_after_a_full_one() -> None:
    fetch, calls = _after_api(list(range(20)))
    pages = list(pagination.after_last_pages(fetch, 10, lambda i: i["n"]))
    assert [[i["n"] for i in p] for p in pages] == [list(range(10)), list(range(10, 20))]
    assert calls == [None, 9, 19]


def test_after_last_starts_after_the_given_cursor() -> None:
    fetch, calls = _after_api(list(range(25)))
    pages = list(pagination.after_last_pages(fetch, 10, lambda i: i["n"], start_after=4))
    assert [[i["n"] for i in p] for p in pages] == [list(range(5, 15)), list(range(15, 25))]
    assert calls == [4, 14, 24]


def test_newest_first_offset_dedupes() -> None:
    # offset 50 serves rows 48..97 (48, 49 again), offset 100 serves 98..119: every row once, in order.
    fetch, calls = _offset_api(list(range(120)), shift=2)
    got = [r["id"] for r in pagination.newest_first_offset_items(fetch, 50, lambda r: r["id"], items_key="values")]
    assert got == list(range(120))
    assert calls == [0, 50, 100]


def test_newest_first_offset_stops_at_total_without_an_extra_call() -> None:
    fetch, calls = _offset_api(list(range(100)))
    got = [r["id"] for r in pagination.newest_first_offset_items(fetch, 50, lambda r: r["id"], items_key="values")]
    assert got == list(range(100))
    assert calls == [0, 50]


def test_newest_first_offset_stops_on_an_empty_page_when_total_overstates() -> None:
    fetch, calls = _offset_api(list(range(70)), total=200)
    got = [r["id"] for r in pagination.newest_first_offset_items(fetch, 50, lambda r: r["id"], items_key="values")]
    assert got == list(range(70))
    assert calls == [0, 50, 70]


def test_next_cursor_pages() -> None:
    nxt: dict[str | None, str | None] = {None: "1:0:0", "1:0:0": "1:0:1", "1:0:1": None}
    calls: list[str | None] = []

    def fetch(cursor: str | None) -> dict[str, Any]:
        calls.append(cursor)
        return {"at": cursor, "cursor": {"next": nxt[cursor]}}

    pages = list(pagination.next_cursor_pages(fetch))
    assert pages == [
        {"at": None, "cursor": {"next": "1:0:0"}},
        {"at": "1:0:0", "cursor": {"next": "1:0:1"}},
        {"at": "1:0:1", "cursor": {"next": None}},
    ]
    assert calls == [None, "1:0:0", "1:0:1"]
