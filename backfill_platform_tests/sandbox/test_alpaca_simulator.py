"""Alpaca simulator: multi-symbol bars, symbol-major pages, page tokens, rate headers, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import yaml

from backfill_platform.sandbox.generators import alpaca as data
from backfill_platform_tests.sandbox.helpers import ALPACA, CONFIG, get
from backfill_platform_tests.sandbox.spec import SPECS

BARS = "/alpaca/v2/stocks/bars"
PARAMS = {
    "symbols": "MSFT,AAPL,NOSUCH",
    "timeframe": "15Min",
    "start": "2024-03-04T00:00:00Z",
    "end": "2024-03-08T23:59:59Z",
}


def _all_pages(sandbox, params: dict) -> tuple[dict[str, list], int]:
    out: dict[str, list] = {}
    token, calls = None, 0
    while True:
        r = get(sandbox.origin, BARS, params={**params, **({"page_token": token} if token else {})}, headers=ALPACA)
        calls += 1
        assert r.status_code == 200, r.text
        body = r.json()
        for symbol, rows in body["bars"].items():
            out.setdefault(symbol, []).extend(rows)
        token = body["next_page_token"]
        if token is None:
            return out, calls


def test_documented_parameters_exist_in_the_spec() -> None:
    doc = yaml.safe_load((SPECS / "alpaca-bars-v2.yaml").read_text())
    names = {p["name"] for p in doc["endpoints"]["/v2/stocks/{symbol}/bars"]["GET"]["params"]["query"]}
    assert {"start", "end", "limit", "page_token", "timeframe", "adjustment"} <= names


def test_pages_are_symbol_major_and_limit_counts_all_symbols(sandbox) -> None:
    r = get(sandbox.origin, BARS, params={**PARAMS, "limit": 150}, headers=ALPACA)
    body = r.json()
    assert sum(len(v) for v in body["bars"].values()) == 150
    assert list(body["bars"]) == ["AAPL", "MSFT"] or list(body["bars"]) == ["AAPL"]
    bar = body["bars"]["AAPL"][0]
    assert set(bar) == {"t", "o", "h", "l", "c", "v", "n", "vw"}
    assert isinstance(bar["v"], int) and isinstance(bar["o"], float) and bar["t"].endswith("Z")
    assert r.headers["X-Ratelimit-Limit"] == "200" and int(r.headers["X-Ratelimit-Reset"]) > 1_700_000_000


def test_paging_returns_the_ground_truth(sandbox) -> None:
    bars, calls = _all_pages(sandbox, {**PARAMS, "limit": 100})
    tf = data.parse_timeframe("15Min")
    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 8, 23, 59, 59, tzinfo=UTC)
    for symbol in ("AAPL", "MSFT"):
        assert bars[symbol] == data.bars(CONFIG.seed, symbol, start, end, tf)
    assert "NOSUCH" not in bars  # a well-formed symbol without data is absent
    total = sum(len(v) for v in bars.values())
    assert calls == total // 100 + 1


def test_daily_bars_are_new_york_midnight() -> None:
    days = data.bars(
        CONFIG.seed,
        "AAPL",
        datetime(2024, 1, 8, tzinfo=UTC),
        datetime(2024, 1, 9, tzinfo=UTC),
        data.parse_timeframe("1Day"),
    )
    assert days[0]["t"] == "2024-01-08T05:00:00Z"  # EST
    summer = data.bars(
        CONFIG.seed,
        "AAPL",
        datetime(2024, 7, 8, tzinfo=UTC),
        datetime(2024, 7, 9, tzinfo=UTC),
        data.parse_timeframe("1Day"),
    )
    assert summer[0]["t"] == "2024-07-08T04:00:00Z"  # EDT


def test_token_must_be_replayed_with_identical_parameters(sandbox) -> None:
    token = get(sandbox.origin, BARS, params={**PARAMS, "limit": 10}, headers=ALPACA).json()["next_page_token"]
    changed = get(sandbox.origin, BARS, params={**PARAMS, "limit": 20, "page_token": token}, headers=ALPACA)
    assert changed.status_code == 400


def test_bad_input_is_rejected_like_alpaca(sandbox) -> None:
    o = sandbox.origin
    assert get(o, BARS, params=PARAMS).status_code == 403
    assert get(o, BARS, params={**PARAMS, "timeframe": "7Day"}, headers=ALPACA).status_code == 400
    assert get(o, BARS, params={**PARAMS, "timeframe": "60Min"}, headers=ALPACA).status_code == 400
    assert (
        get(o, BARS, params={**PARAMS, "symbols": "aapl"}, headers=ALPACA).json()["message"] == "invalid symbol: aapl"
    )
    assert get(o, BARS, params={**PARAMS, "limit": 10_001}, headers=ALPACA).status_code == 422
    assert get(o, BARS, params={**PARAMS, "start": "yesterday"}, headers=ALPACA).status_code == 400


def test_feed_and_adjustment_are_validated(sandbox) -> None:
    o = sandbox.origin
    for name, good, bad in (("feed", "sip", "nasdaq"), ("adjustment", "split", "splits")):
        assert get(o, BARS, params={**PARAMS, name: good}, headers=ALPACA).status_code == 200
        r = get(o, BARS, params={**PARAMS, name: bad}, headers=ALPACA)
        assert r.status_code == 400 and r.json()["message"] == f"invalid {name}: {bad!r}"


def test_weekends_and_holidays_have_no_bars_and_evenings_cross_utc_midnight() -> None:
    tf = data.parse_timeframe("1Min")
    assert tf is not None
    for closed in (date(2024, 3, 29), date(2024, 3, 30), date(2024, 12, 25)):  # Good Friday, a Saturday, Christmas
        assert data.bars_for_day(CONFIG.seed, "AAPL", closed, tf) == []
    bars = data.bars_for_day(CONFIG.seed, "AAPL", date(2024, 1, 8), tf)
    times = [datetime.fromisoformat(b["t"]) for b in bars]
    ny = [t.astimezone(data.NEW_YORK) for t in times]
    assert min(ny).hour == 4 and max(ny).hour == 19  # pre-market from 04:00, after-hours until 20:00
    assert any(t.date() == date(2024, 1, 9) for t in times)  # 19:00 EST is already tomorrow in UTC
    assert {t.date() for t in ny} == {date(2024, 1, 8)}
    assert times == sorted(times) and all(b["l"] <= min(b["o"], b["c"]) <= max(b["o"], b["c"]) <= b["h"] for b in bars)
