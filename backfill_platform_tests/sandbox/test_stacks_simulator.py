"""Hiro simulator: v1/v2 offset pages and v3 cursor pages, newest first, ratelimit headers, errors."""

from __future__ import annotations

from datetime import UTC, datetime

from backfill_platform.sandbox.generators import stacks as data
from backfill_platform_tests.sandbox.helpers import CONFIG, get
from backfill_platform_tests.sandbox.spec import response_schema, validate

SPEC = "stacks-api.openapi.yaml"
WALLET = data.wallets(CONFIG.seed, CONFIG.stacks_wallets)[2]  # 281 transactions at seed 7
KEY = {"x-api-key": CONFIG.stacks_api_key}


def _truth() -> list[int]:
    return [k[0] for k in data.history(CONFIG.seed, WALLET, CONFIG.scale)]


def test_v1_offset_pages_newest_first_with_deprecation_header(sandbox) -> None:
    heights, offset = [], 0
    while True:
        r = get(
            sandbox.origin,
            f"/stacks/extended/v1/address/{WALLET}/transactions",
            params={"limit": 50, "offset": offset},
            headers=KEY,
        )
        body = r.json()
        assert r.headers["warning"].startswith("299") and r.headers["ratelimit-limit"] == "500"
        heights.extend(t["block_height"] for t in body["results"])
        offset += len(body["results"])
        if not body["results"] or offset >= body["total"]:
            break
    assert heights == _truth() and heights == sorted(heights, reverse=True)
    tx = body["results"][0]
    assert tx["tx_id"].startswith("0x") and isinstance(tx["fee_rate"], str) and "tx_type" in tx


def test_v2_results_wrap_transactions(sandbox) -> None:
    body = get(sandbox.origin, f"/stacks/extended/v2/addresses/{WALLET}/transactions", params={"limit": 5}).json()
    item = body["results"][0]
    assert set(item) == {"tx", "stx_sent", "stx_received", "events"} and isinstance(item["stx_sent"], str)
    assert body["next_cursor"] and body["total"] == len(_truth())


def test_v3_cursor_pages_match_the_spec_and_the_ground_truth(sandbox) -> None:
    schema = response_schema(SPEC, "/extended/v3/principals/{principal}/transactions")
    heights, cursor = [], None
    while True:
        r = get(
            sandbox.origin,
            f"/stacks/extended/v3/principals/{WALLET}/transactions",
            params={"limit": 50, **({"cursor": cursor} if cursor else {})},
            headers=KEY,
        )
        body = r.json()
        validate(schema, body, openapi_31=True)
        heights.extend(i["transaction"]["block"]["height"] for i in body["results"])
        cursor = body["cursor"]["next"]
        if cursor is None:
            break
    assert heights == _truth()


def test_limits_and_malformed_principals_are_rejected(sandbox) -> None:
    r = get(sandbox.origin, f"/stacks/extended/v1/address/{WALLET}/transactions", params={"limit": 51})
    assert r.status_code == 400 and r.json()["message"] == "querystring/limit must be <= 50"
    assert get(sandbox.origin, "/stacks/extended/v1/address/not-a-principal/transactions").status_code == 400
    assert (
        get(
            sandbox.origin, f"/stacks/extended/v1/address/{WALLET}/transactions", headers={"x-api-key": "wrong"}
        ).status_code
        == 403
    )


def test_new_blocks_shift_offset_pages(sandbox) -> None:
    sandbox.faults("stacks", {"shift_rows": 2})
    seen, offset = [], 0
    while True:
        body = get(
            sandbox.origin,
            f"/stacks/extended/v1/address/{WALLET}/transactions",
            params={"limit": 50, "offset": offset},
            headers=KEY,
        ).json()
        seen.extend(t["tx_id"] for t in body["results"])
        offset += len(body["results"])
        if not body["results"] or offset >= body["total"]:
            break
    assert len(seen) > len(set(seen))  # rows pushed down by new arrivals show up twice


def test_block_by_time_matches_the_spec_and_is_the_newest_block_before(sandbox) -> None:
    schema = response_schema(SPEC, "/extended/v2/blocks/by-block-time/{timestamp}")
    moment = 1_790_000_000
    body = get(sandbox.origin, f"/stacks/extended/v2/blocks/by-block-time/{moment}", headers=KEY).json()
    validate(schema, body, openapi_31=True)
    assert body["block_time"] <= moment < body["block_time"] + data.BLOCK_SECONDS
    head = get(sandbox.origin, "/stacks/extended/v2/blocks/by-block-time/4000000000", headers=KEY).json()
    assert head["height"] == data.head_height()  # a future moment gives the chain tip
    assert get(sandbox.origin, "/stacks/extended/v2/blocks/by-block-time/x").status_code == 400


def test_a_cursor_at_a_height_starts_the_walk_there(sandbox) -> None:
    wallet = data.busy_wallets(CONFIG.seed)[0]
    height = data.height_at(datetime(2026, 10, 1, tzinfo=UTC))
    body = get(
        sandbox.origin,
        f"/stacks/extended/v3/principals/{wallet}/transactions",
        params={"limit": 50, "cursor": f"{height}:0:0"},
        headers=KEY,
    ).json()
    heights = [i["transaction"]["block"]["height"] for i in body["results"]]
    below = [k[0] for k in data.history(CONFIG.seed, wallet) if k[0] <= height][:50]
    assert heights == below and heights[0] <= height


def test_revision_1_lists_some_transactions_pending_and_revision_2_settles_them(sandbox) -> None:
    path = f"/stacks/extended/v2/addresses/{WALLET}/transactions"
    try:
        statuses = {}
        for revision in (0, 1, 2):
            sandbox.set_revision("stacks", revision)
            results = get(sandbox.origin, path, params={"limit": 50}, headers=KEY).json()["results"]
            statuses[revision] = {r["tx"]["tx_id"]: r["tx"]["tx_status"] for r in results}
        assert "pending" not in statuses[0].values() and "pending" not in statuses[2].values()
        pending = [t for t, s in statuses[1].items() if s == "pending"]
        assert pending and all(statuses[2][t] != "pending" for t in pending)
    finally:
        sandbox.set_revision("stacks", 0)


def test_v3_pages_do_not_shift_while_blocks_arrive(sandbox) -> None:
    sandbox.faults("stacks", {"shift_rows": 3})
    seen, cursor = [], None
    while True:
        body = get(
            sandbox.origin,
            f"/stacks/extended/v3/principals/{WALLET}/transactions",
            params={"limit": 50, **({"cursor": cursor} if cursor else {})},
            headers=KEY,
        ).json()
        seen.extend(i["transaction"]["tx_id"] for i in body["results"])
        cursor = body["cursor"]["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(_truth())
