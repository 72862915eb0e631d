"""Paging helpers for the five styles the APIs use; each source's client is a few lines on top of these.

Every helper takes `fetch(...)` returning one parsed page and yields pages (or items) lazily, so a caller that
stops reading stops fetching.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

Page = dict[str, Any]

# `after_last_pages` pages over whatever `fetch` returns (e.g. Canton's decoded ScanUpdate records) and threads a
# cursor of type C from each page's last item into the next fetch. The offset helpers stay on `dict`: their items
# come out of an untyped JSON `Page`, so a type variable there could only be solved from `item_key`'s annotation, and
# a caller passing a plain lambda would see its items typed as `object`.
T = TypeVar("T")
C = TypeVar("C")


def skip_limit_pages(
    fetch: Callable[[int, int], Page],
    limit: int,
    items_key: str,
    item_key: Callable[[dict], Hashable],
    total_key: str = "total",
) -> Iterator[list[dict]]:
    """skip/limit with `total` (Blaze, Racing): yields de-duplicated items page by page.

    Stops as soon as `total` distinct items were seen (no extra call). If offsets shifted under us (rows arriving
    or moving), duplicates come back and fewer than `total` are distinct by then; paging continues to an empty page.
    """
    seen: set[Hashable] = set()
    skip = 0
    while True:
        page = fetch(skip, limit)
        items = page.get(items_key) or []
        fresh = [i for i in items if item_key(i) not in seen]
        seen.update(item_key(i) for i in fresh)
        if fresh:
            yield fresh
        skip += len(items)
        if not items or len(seen) >= int(page.get(total_key) or 0):
            return


def token_pages(fetch: Callable[[str | None], Page], token_key: str = "next_page_token") -> Iterator[Page]:
    """Opaque page token (Alpaca): replay each token with the same parameters until it is null."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield page
        token = page.get(token_key)
        if not token:
            return


def after_last_pages(
    fetch: Callable[[C | None], list[T]],
    page_size: int,
    cursor_of: Callable[[T], C],
    start_after: C | None = None,
) -> Iterator[list[T]]:
    """Body cursor taken from the last item (Scan): the stream ends with a page shorter than `page_size`."""
    after = start_after
    while True:
        items = fetch(after)
        if items:
            yield items
        if len(items) < page_size:
            return
        after = cursor_of(items[-1])


def newest_first_offset_items(
    fetch: Callable[[int, int], Page],
    limit: int,
    item_key: Callable[[dict], Hashable],
    items_key: str = "results",
    total_key: str = "total",
) -> Iterator[dict]:
    """Offset pages ordered newest first (Hiro v1/v2): rows pushed down by new arrivals come back; skip them."""
    seen: set[Hashable] = set()
    offset = 0
    while True:
        page = fetch(offset, limit)
        items = page.get(items_key) or []
        for item in items:
            key = item_key(item)
            if key not in seen:
                seen.add(key)
                yield item
        offset += len(items)
        if not items or offset >= int(page.get(total_key) or 0):
            return


def next_cursor_pages(fetch: Callable[[str | None], Page]) -> Iterator[Page]:
    """`cursor.next` (Hiro v3): follow it until it is null."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page
        cursor = (page.get("cursor") or {}).get("next")
        if not cursor:
            return
