"""Paging helpers: the fewest calls in the normal case, no loss or duplicates when offsets shift."""

from __future__ import annotations

from backfill_platform.resources import pagination


def _offset_api(rows: list[int], shift: int = 0):
    calls: list[int] = []

    def fetch(skip: int, limit: int) -> dict:
        calls.append(skip)
        lo = max(0, skip - shift) if skip else 0
        return {"values": [{"id": r} for r in rows[lo : lo + limit]], "total": len(rows)}

    return fetch, calls


def test_skip_limit_stops_at_total_without_an_extra_call() -> None:
    fetch, calls = _offset_api(list(range(250)))
    pages = list(pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]))
    assert [r["id"] for p in pages for r in p] == list(range(250)) and calls == [0, 100, 200]


def test_skip_limit_survives_shifting_offsets() -> None:
    fetch, _ = _offset_api(list(range(250)), shift=3)
    got = [r["id"] for p in pagination.skip_limit_pages(fetch, 100, "values", lambda r: r["id"]) for r in p]
    assert sorted(got) == list(range(250)) and len(got) == 250


def test_token_pages_follow_until_null() -> None:
    tokens = {None: "a", "a": "b", "b": None}
    pages = list(pagination.token_pages(lambda t: {"t": t, "next_page_token": tokens[t]}))
    assert [p["t"] for p in pages] == [None, "a", "b"]


def test_after_last_ends_on_a_short_page() -> None:
    data = list(range(25))

    def fetch(after):
        lo = 0 if after is None else after + 1
        return [{"n": n} for n in data[lo : lo + 10]]

    pages = list(pagination.after_last_pages(fetch, 10, lambda i: i["n"]))
    assert [len(p) for p in pages] == [10, 10, 5]


def test_newest_first_offset_dedupes() -> None:
    fetch, _ = _offset_api(list(range(120)), shift=2)
    got = [r["id"] for r in pagination.newest_first_offset_items(fetch, 50, lambda r: r["id"], items_key="values")]
    assert len(got) == len(set(got))


def test_next_cursor_pages() -> None:
    nxt = {None: "1:0:0", "1:0:0": None}
    assert len(list(pagination.next_cursor_pages(lambda c: {"cursor": {"next": nxt[c]}}))) == 2
