"""Alpaca against the sandbox: ground truth at the floor of calls, New York days, added symbols, bad input."""

import math
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import AlpacaApi
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.generators import alpaca as truth
from backfill_platform.sources import load, named
from backfill_platform.sources.alpaca import settings
from backfill_platform.sources.alpaca.client import symbol_groups
from backfill_platform_tests.sources.helpers import drop_schemas, kill_after_commits, partition_metadata

CFG = SandboxConfig()
NY = ZoneInfo("America/New_York")
ROUTE = "alpaca stocks/bars"


def loaded(symbols: str, timeframes: str = "15Min,1Day", **extra: str):
    env = {"BACKFILL_ALPACA_SYMBOLS": symbols, "BACKFILL_ALPACA_TIMEFRAMES": timeframes, **extra}
    return named("alpaca", load(env))


def resources(sandbox, db_url: str, **kw) -> dict:
    api = AlpacaApi(
        base_url=f"{sandbox.origin}/alpaca",
        rate="200/min",
        key_id=kw.pop("key_id", CFG.alpaca_key_id),
        secret_key=kw.pop("secret_key", CFG.alpaca_secret_key),
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        **kw,
    )
    return {"alpaca": api, "io_manager": PostgresIOManager(database_url=db_url)}


def span(first: date, last: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=NY)


def expected(symbols, tf: str, first: date, last: date) -> dict[tuple[str, datetime], dict]:
    timeframe = truth.parse_timeframe(tf)
    assert timeframe is not None
    start, end = midnight(first), midnight(last + timedelta(days=1)) - timedelta(seconds=1)
    return {
        (s, datetime.fromisoformat(b["t"])): b
        for s in symbols
        for b in truth.bars(CFG.seed, s, start.astimezone(UTC), end.astimezone(UTC), timeframe)
    }


def floor(symbols, tf: str, first: date, last: date, source) -> int:
    """Σ over the symbol groups the source sends of ⌈bars ÷ 10,000⌉ (at least one call per group)."""
    params = {
        "symbols": "",
        "timeframe": tf,
        "start": "2024-01-01T05:00:00Z",
        "end": "2024-01-01T05:00:00Z",
        "limit": 10_000,
        "feed": "iex",
        "adjustment": "raw",
    }
    bars = expected(symbols, tf, first, last)
    per = Counter(s for s, _ in bars)
    groups = symbol_groups(sorted(symbols), params, source.config["MAX_QUERY_CHARS"])
    return sum(max(1, math.ceil(sum(per[s] for s in g) / settings.MAX_LIMIT)) for g in groups)


def stored(db_url: str, table: str) -> dict[tuple[str, datetime], tuple]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(f"SELECT symbol, t, o, h, l, c, v, n, vw, feed, adjustment FROM alpaca.{table}").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def calls(sandbox) -> int:
    return sandbox.stats()["routes"].get(ROUTE, {}).get("requests", 0)


@pytest.fixture
def clean(db_url: str) -> str:
    return drop_schemas(db_url, "alpaca")


def asset(source, table: str) -> dg.AssetsDefinition:
    return next(a for a in source.assets if a.key.path[-1] == table)


FIRST, LAST = date(2024, 3, 25), date(2024, 4, 3)  # Good Friday (03-29) and a weekend inside


def test_many_symbols_across_pages_land_the_ground_truth_at_the_floor(sandbox, clean) -> None:
    symbols = truth.TICKERS  # 43 symbols, ~16,000 15Min bars: pages end inside a symbol
    source = loaded(",".join(symbols), "15Min", BACKFILL_ALPACA_MAX_QUERY_CHARS="500")  # two symbol groups
    a = asset(source, "bars_15min")
    result = dg.materialize([a, *source.checks], resources=resources(sandbox, clean), tags=span(FIRST, LAST))
    assert result.success
    want = expected(symbols, "15Min", FIRST, LAST)
    got = stored(clean, "bars_15min")
    assert got.keys() == want.keys()
    assert all(got[k][:7] == tuple(want[k][f] for f in ("o", "h", "l", "c", "v", "n", "vw")) for k in want)
    assert {v[7:] for v in got.values()} == {("iex", "raw")}
    n_floor = floor(symbols, "15Min", FIRST, LAST, source)
    assert n_floor >= 3 and calls(sandbox) == n_floor
    # Every day committed, closed days (weekend, Good Friday) empty; each day's rows are its New York date's.
    per_day = partition_metadata(result, a.key)
    days = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    by_day = Counter(t.astimezone(NY).date() for _, t in want)
    assert sorted(per_day) == [d.isoformat() for d in days]
    assert all(per_day[d.isoformat()]["rows"] == by_day[d] for d in days)
    assert [d for d in days if by_day[d] == 0] == [date(2024, 3, 29), date(2024, 3, 30), date(2024, 3, 31)]
    assert sum(m["api_calls"] for m in per_day.values()) == n_floor
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_daily_bars_across_dst_and_evening_minute_bars_land_on_new_york_dates(sandbox, clean) -> None:
    first, last = date(2024, 3, 6), date(2024, 3, 13)  # DST begins 2024-03-10: 05:00Z before, 04:00Z after
    source = loaded("AAPL,MSFT,SPY", "1Min,1Day")
    result = dg.materialize(
        [asset(source, "bars_1day"), asset(source, "bars_1min")],
        resources=resources(sandbox, clean),
        tags=span(first, last),
    )
    assert result.success
    daily = stored(clean, "bars_1day")
    assert daily.keys() == expected(["AAPL", "MSFT", "SPY"], "1Day", first, last).keys()
    assert {t.astimezone(NY).time().isoformat() for _, t in daily} == {"00:00:00"}
    assert {t.astimezone(UTC).hour for _, t in daily} == {4, 5}
    minutes = expected(["AAPL", "MSFT", "SPY"], "1Min", first, last)
    evening = [t for _, t in minutes if t.astimezone(UTC).date() != t.astimezone(NY).date()]
    assert evening  # after 19:00 (EDT: 20:00) New York the UTC date is already the next day
    assert stored(clean, "bars_1min").keys() == minutes.keys()
    per_day = partition_metadata(result, asset(source, "bars_1min").key)
    by_day = Counter(t.astimezone(NY).date().isoformat() for _, t in minutes)
    assert {d: m["rows"] for d, m in per_day.items() if m["rows"]} == dict(by_day)


def test_adding_two_symbols_fetches_only_those_two(sandbox, clean) -> None:
    first, last = date(2024, 3, 4), date(2024, 3, 8)
    before = loaded("AAPL,MSFT,NVDA,AMZN,GOOGL", "1Day")
    assert dg.materialize(
        [asset(before, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last)
    ).success
    kept = stored(clean, "bars_1day")
    sandbox.reset()
    after = loaded("AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA", "1Day")
    result = dg.materialize([asset(after, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last))
    assert result.success
    assert calls(sandbox) == 1  # one request for the two new symbols, all five days
    per_day = partition_metadata(result, asset(after, "bars_1day").key)
    assert {m["symbols_requested"] for m in per_day.values()} == {2}
    got = stored(clean, "bars_1day")
    assert got.keys() == expected(after.config["SYMBOLS"], "1Day", first, last).keys()
    assert {k: got[k] for k in kept} == kept
    sandbox.reset()  # the same universe again: every day holds every symbol, nothing is asked
    assert dg.materialize(
        [asset(after, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last)
    ).success
    assert calls(sandbox) == 0


def test_an_unknown_symbol_has_no_rows_and_no_error(sandbox, clean) -> None:
    source = loaded("AAPL,NOSUCH", "1Day")
    result = dg.materialize(
        [asset(source, "bars_1day"), *source.checks],
        resources=resources(sandbox, clean),
        tags=span(date(2024, 3, 4), date(2024, 3, 8)),
    )
    assert result.success
    assert {s for s, _ in stored(clean, "bars_1day")} == {"AAPL"}
    shares = [c for c in result.get_asset_check_evaluations() if c.check_name == "symbols_with_bars"]
    # one evaluation per day, each a warning (the run succeeded): half the universe has bars on every open day
    assert [c.partition for c in shares] == [f"2024-03-0{d}" for d in range(4, 9)]
    assert all(not c.passed and c.severity == dg.AssetCheckSeverity.WARN for c in shares)
    assert {c.metadata["run_lowest_share"].value for c in shares} == {0.5}
    assert "50.0% of 2 symbols" in str(shares[0].metadata["details"].value)


def test_a_429_waits_for_x_ratelimit_reset(sandbox, clean) -> None:
    reset = str(int(time.time()) + 2)
    sandbox.faults("alpaca", {"scripted": [{"kind": "status", "status": 429, "headers": {"X-Ratelimit-Reset": reset}}]})
    source = loaded("AAPL,MSFT", "1Day")
    started = time.time()
    result = dg.materialize(
        [asset(source, "bars_1day")], resources=resources(sandbox, clean), partition_key="2024-03-05"
    )
    assert result.success and time.time() >= int(reset)
    assert len(stored(clean, "bars_1day")) == 2 and calls(sandbox) == 2 and time.time() - started < 10


def test_a_bad_timeframe_fails_at_load_in_one_line() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load({"BACKFILL_ALPACA_TIMEFRAMES": "1Min,7Day"})
    assert str(caught.value).startswith("BACKFILL_ALPACA_TIMEFRAMES='1Min,7Day' is not a comma list of timeframes")
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=r"^BACKFILL_ALPACA_SYMBOLS='@/nonexistent' is not a comma list"):
        load({"BACKFILL_ALPACA_SYMBOLS": "@/nonexistent"})


def test_symbols_from_a_file_of_thousands(tmp_path) -> None:
    path = tmp_path / "watchlist.txt"
    path.write_text("# watchlist\n" + "\n".join(truth.universe(3000)) + "\n\n")
    source = loaded(f"@{path}", "1Day")
    assert len(source.config["SYMBOLS"]) == 3000


def test_bad_keys_fail_in_one_line_and_write_nothing(sandbox, clean) -> None:
    source = loaded("AAPL", "1Day")
    with pytest.raises(
        Exception, match=r"alpaca /v2/stocks/bars: HTTP 403 \(forbidden\): check BACKFILL_ALPACA_KEY_ID"
    ) as e:
        dg.materialize(
            [asset(source, "bars_1day")],
            resources=resources(sandbox, clean, secret_key="wrong"),
            partition_key="2024-03-05",
        )
    assert "wrong" not in str(e.value)
    with psycopg.connect(clean) as conn:
        assert conn.execute("SELECT to_regclass('alpaca.bars_1day')").fetchone() == (None,)


def test_a_bounded_buffer_cuts_the_range_into_chunks_of_days_with_the_same_rows(sandbox, clean) -> None:
    first, last = date(2024, 3, 4), date(2024, 3, 15)
    symbols = "AAPL,MSFT,NVDA,SPY"
    source = loaded(symbols, "1Day", BACKFILL_ALPACA_BUFFER_BARS="16")  # 4 symbols × 4 days a chunk
    result = dg.materialize([asset(source, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last))
    assert result.success
    assert stored(clean, "bars_1day").keys() == expected(symbols.split(","), "1Day", first, last).keys()
    assert calls(sandbox) == 3  # 12 days in three chunks, one call each
    chunks = {m["chunk"] for m in partition_metadata(result, asset(source, "bars_1day").key).values()}
    assert chunks == {"2024-03-04..2024-03-07", "2024-03-08..2024-03-11", "2024-03-12..2024-03-15"}


def test_changing_the_feed_refetches_the_days_with_it(sandbox, clean) -> None:
    first, last = date(2024, 3, 4), date(2024, 3, 6)
    iex = loaded("AAPL,MSFT", "1Day")
    assert dg.materialize(
        [asset(iex, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last)
    ).success
    sandbox.reset()
    sip = loaded("AAPL,MSFT", "1Day", BACKFILL_ALPACA_FEED="sip")
    assert dg.materialize(
        [asset(sip, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last)
    ).success
    assert calls(sandbox) == 1
    assert {v[7:] for v in stored(clean, "bars_1day").values()} == {("sip", "raw")}


def test_checks_see_only_the_run_days_and_fail_on_a_bad_bar(sandbox, clean) -> None:
    source = loaded("AAPL,MSFT", "1Day")
    res = resources(sandbox, clean)
    assert dg.materialize([asset(source, "bars_1day")], resources=res, tags=span(date(2024, 3, 4), date(2024, 3, 8)))
    with psycopg.connect(clean) as conn:  # a broken bar on 03-04 only
        conn.execute("UPDATE alpaca.bars_1day SET l = h + 1 WHERE symbol = 'AAPL' AND t = '2024-03-04T05:00:00Z'")

    def ohlc(day: date) -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            [asset(source, "bars_1day"), *source.checks],
            resources=res,
            tags=span(day, day),
            selection=dg.AssetSelection.checks_for_assets(asset(source, "bars_1day")),
        )
        [found] = [c for c in result.get_asset_check_evaluations() if c.check_name == "ohlc_sane"]
        assert found.partition == day.isoformat()
        return found

    assert ohlc(date(2024, 3, 5)).passed
    bad = ohlc(date(2024, 3, 4))
    assert not bad.passed and bad.metadata["run_insane_bars"].value == 1


def test_a_refetch_run_asks_again_for_members_already_held(sandbox, clean) -> None:
    source = loaded("AAPL,MSFT", "1Day")
    res, days = resources(sandbox, clean), span(date(2024, 3, 4), date(2024, 3, 6))
    assert dg.materialize([asset(source, "bars_1day")], resources=res, tags=days).success
    sandbox.reset()
    refetch = {**days, "backfill_platform/refetch": "true"}  # what `backfill --refetch` tags its backfill with
    assert dg.materialize([asset(source, "bars_1day")], resources=res, tags=refetch).success
    assert calls(sandbox) == 1 and len(stored(clean, "bars_1day")) == 6


@pytest.mark.slow
def test_killed_mid_range_then_rerun_fetches_no_committed_day_again(sandbox, clean) -> None:
    first, last = date(2024, 3, 4), date(2024, 3, 15)
    env = {"BACKFILL_ALPACA_BUFFER_BARS": "8"}  # 2 symbols × 4 days a chunk: three chunks, one call each
    # The second chunk's request hangs: the run is killed there, after the first four days committed.
    sandbox.faults("alpaca", {"scripted": [{"kind": "slow", "seconds": 600, "after": 1}]})
    script = f"""
        import dagster as dg
        from backfill_platform_tests.sources.test_alpaca import asset, loaded, resources, span
        from datetime import date
        class S: origin = {sandbox.origin!r}
        source = loaded("AAPL,MSFT", "1Day", **{env!r})
        dg.materialize([asset(source, "bars_1day")], resources=resources(S, {clean!r}, timeout_s=900),
                       tags=span(date(2024, 3, 4), date(2024, 3, 15)))
    """
    kill_after_commits(script, clean, "alpaca/bars_1day", 4, settle_s=0.3)
    assert calls(sandbox) == 2
    sandbox.reset()
    source = loaded("AAPL,MSFT", "1Day", **env)  # a new run, not a retry: the holdings alone skip the four days
    result = dg.materialize([asset(source, "bars_1day")], resources=resources(sandbox, clean), tags=span(first, last))
    assert result.success and calls(sandbox) == 2
    assert stored(clean, "bars_1day").keys() == expected(["AAPL", "MSFT"], "1Day", first, last).keys()


def test_a_malformed_page_fails_in_one_line_and_writes_nothing(sandbox, clean) -> None:
    body = '{"bars": {"AAPL": [{"t": "2024-03-05T05:00:00Z", "o": 1}]}, "next_page_token": null}'
    sandbox.faults("alpaca", {"scripted": [{"kind": "status", "status": 200, "body": body}]})
    source = loaded("AAPL", "1Day")
    with pytest.raises(Exception, match=r"alpaca /v2/stocks/bars: malformed page: a bar of AAPL lacks t/o/h/l/c/v"):
        dg.materialize([asset(source, "bars_1day")], resources=resources(sandbox, clean), partition_key="2024-03-05")
    with psycopg.connect(clean) as conn:
        assert conn.execute("SELECT to_regclass('alpaca.bars_1day')").fetchone() == (None,)
