"""The IO manager against the embedded PostgreSQL: replace, merge, ranges, awkward values, bad input, DDL."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import dagster as dg
import pandas as pd
import psycopg
import pytest

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.io_managers.spec import (
    Batches,
    Column,
    Derivation,
    PartitionBatch,
    SqlInsert,
    TableSpec,
    register,
)
from backfill_platform.io_managers.writer import Target, WriteError, write_partition
from backfill_platform_tests.io_managers.fixtures import (
    DAILY,
    EVENTS,
    day_rows,
    events_asset,
    range_tags,
    ranged_events,
)


@pytest.fixture
def io(db_url: str) -> dict:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS iotest CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    from backfill_platform.io_managers import writer

    writer._ensured.clear()
    return {"io_manager": PostgresIOManager(database_url=db_url)}


def rows(db_url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_b_a_again_replaces_only_that_partition(io, db_url) -> None:
    assert dg.materialize([events_asset("a")], partition_key="2024-03-01", resources=io).success
    assert dg.materialize([events_asset("a")], partition_key="2024-03-02", resources=io).success
    assert dg.materialize([events_asset("b", n=3)], partition_key="2024-03-01", resources=io).success
    got = rows(db_url, "SELECT id, note FROM iotest.events ORDER BY id")
    assert [r[0] for r in got] == [f"2024-03-01-{i}" for i in range(3)] + [f"2024-03-02-{i}" for i in range(5)]
    assert {r[1].split()[0] for r in got if r[0].startswith("2024-03-01")} == {"b"}
    assert {r[1].split()[0] for r in got if r[0].startswith("2024-03-02")} == {"a"}


def test_range_run_commits_and_reports_each_partition(io, db_url) -> None:
    result = dg.materialize([events_asset()], resources=io, tags=range_tags("2024-03-05", "2024-03-08"))
    assert result.success
    materializations = [e.materialization for e in result.get_asset_materialization_events()]
    # The IO manager's, logged as each partition commits, then Dagster's own when the output is handled.
    assert len(materializations) == 8
    at_commit, on_success = materializations[:4], materializations[4:]
    # Two writers commit partitions side by side: each is reported once, as it commits, in any order.
    assert sorted(m.partition for m in at_commit) == ["2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
    # Dagster's own materialization of each partition, on success, shows that partition's figures, not the run's.
    assert sorted(m.partition for m in on_success) == sorted(m.partition for m in at_commit)
    for m in on_success:
        assert m.metadata["rows"].value == 5 and m.metadata["api_calls"].value == 1
        assert "rows_written" not in m.metadata and "partitions_written" not in m.metadata
    assert rows(db_url, "SELECT count(*) FROM iotest.events") == [(20,)]
    ledger = rows(db_url, "SELECT partition, rows FROM backfill_platform.ledger ORDER BY partition")
    assert ledger == [("2024-03-05", 5), ("2024-03-06", 5), ("2024-03-07", 5), ("2024-03-08", 5)]


def test_merge_rewrites_only_changed_rows(io, db_url) -> None:
    def run(frame: list[dict]) -> None:
        assert dg.materialize(
            [accounts], resources=io, run_config={"ops": {"iotest__accounts": {"config": {"frame": frame}}}}
        ).success

    accounts = dg.asset(key=["iotest", "accounts"], io_manager_key="io_manager", config_schema={"frame": list})(
        lambda context: pd.DataFrame(context.op_execution_context.op_config["frame"])
    )
    run([{"id": "a", "name": "Ann", "balance": 1}, {"id": "b", "name": "Bob", "balance": 2}])
    before = dict(rows(db_url, "SELECT id, xmin::text FROM iotest.accounts"))
    run(
        [
            {"id": "a", "name": "Ann", "balance": 1},
            {"id": "b", "name": "Bob", "balance": 3},
            {"id": "c", "name": "Cy", "balance": None},
        ]
    )
    after = dict(rows(db_url, "SELECT id, xmin::text FROM iotest.accounts"))
    assert after["a"] == before["a"]  # unchanged row: no new version written
    assert after["b"] != before["b"]
    assert rows(db_url, "SELECT id, balance FROM iotest.accounts ORDER BY id") == [("a", 1), ("b", 3), ("c", None)]


def test_awkward_values_survive_copy(io, db_url) -> None:
    awkward = "tab\there\nnew line \\ backslash \u00e9\u4e2d\U0001f600 'quote' \"dq\" \\N"
    frame = pd.DataFrame(
        {
            "id": ["x1", "x2"],
            "ts": [pd.Timestamp("2024-03-01T13:30:00-05:00"), pd.Timestamp("2024-03-01T00:00:00+00:00")],
            "amount": [Decimal("123456789012345678901234567890.123456789"), None],
            "note": [awkward, None],
            "payload": [{"nested": {"list": [1, None, "x\ty"], "deep": {"a": True}}}, None],
        }
    )

    @dg.asset(key=["iotest", "events"], partitions_def=DAILY, io_manager_key="io_manager")
    def events() -> pd.DataFrame:
        return frame[frame["ts"] < pd.Timestamp("2024-03-02T00:00:00+00:00")]

    assert dg.materialize([events], partition_key="2024-03-01", resources=io).success
    got = rows(db_url, "SELECT id, ts, amount, note, payload FROM iotest.events ORDER BY id")
    assert got[0][0] == "x1" and got[0][2] == Decimal("123456789012345678901234567890.123456789")
    assert got[0][3] == awkward and got[0][4] == {"nested": {"list": [1, None, "x\ty"], "deep": {"a": True}}}
    assert got[0][1] == pd.Timestamp("2024-03-01T18:30:00+00:00").to_pydatetime()  # zone kept
    assert got[1][2:] == (None, None, None)


def _target(spec: TableSpec, key: str = "2024-03-01") -> Target:
    from datetime import UTC, datetime, timedelta

    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    return Target(
        spec=spec,
        asset=spec.qualified.replace(".", "/"),
        partition=key,
        start=start,
        end=start + timedelta(days=1),
        lineage="run:test",
        run_id="test",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([(None, "2024-03-01T01:00:00Z", 1, "n", None)], "key column id is NULL in 1 rows"),
        ([("k", "2024-03-01T01:00:00Z", 1, "n", None)] * 2, "duplicate key (id='k') appears 2 times"),
        ([("k", "2024-03-01T01:00:00Z", "12x", "n", None)], "column amount: invalid input syntax for type numeric"),
        ([("k", "2024-03-05T01:00:00Z", 1, "n", None)], "1 rows have ts outside"),
        (pd.DataFrame({"ts": ["2024-03-01T01:00:00Z"]}), "key column id is missing from the DataFrame"),
    ],
)
def test_bad_input_names_asset_partition_column_and_writes_nothing(io, db_url, data, message) -> None:
    with psycopg.connect(db_url) as conn:
        write_partition(conn, _target(EVENTS), day_rows("2024-03-01"))  # existing good data
        with pytest.raises(WriteError) as err:
            write_partition(conn, _target(EVENTS), data)
    text = str(err.value)
    assert text.startswith("asset iotest/events partition 2024-03-01: ") and message in text, text
    assert rows(db_url, "SELECT count(*) FROM iotest.events") == [(5,)]  # the earlier commit is intact
    assert rows(db_url, "SELECT count(*) FROM backfill_platform.ledger") == [(1,)]


def test_partitioned_asset_without_partition_column_is_refused(io) -> None:
    register(TableSpec("iotest", "nopart", (Column("id", "text"),), ("id",)))

    @dg.asset(key=["iotest", "nopart"], partitions_def=DAILY, io_manager_key="io_manager")
    def nopart() -> pd.DataFrame:
        return pd.DataFrame({"id": ["a"]})

    with pytest.raises(
        WriteError, match=r"asset iotest/nopart is partitioned but table iotest\.nopart declares no partition column"
    ):
        dg.materialize([nopart], partition_key="2024-03-01", resources=io)


def test_schema_evolution(io, db_url) -> None:
    with psycopg.connect(db_url) as conn:
        write_partition(conn, _target(EVENTS), day_rows("2024-03-01"))
        from backfill_platform.io_managers import writer

        wider = TableSpec("iotest", "events", (*EVENTS.columns, Column("extra", "integer")), ("id",), "ts")
        writer._ensured.clear()
        write_partition(conn, _target(wider, "2024-03-02"), [(*r, 7) for r in day_rows("2024-03-02")])
        assert rows(db_url, "SELECT count(*) FROM iotest.events WHERE extra = 7") == [(5,)]
        retyped = TableSpec(
            "iotest", "events", (*EVENTS.columns[:2], Column("amount", "text"), *EVENTS.columns[3:]), ("id",), "ts"
        )
        writer._ensured.clear()
        with pytest.raises(WriteError, match=r"column amount of iotest\.events is numeric but the spec declares text"):
            write_partition(conn, _target(retyped), day_rows("2024-03-01"))
        rekeyed = TableSpec("iotest", "events", EVENTS.columns, ("id", "ts"), "ts")
        writer._ensured.clear()
        with pytest.raises(WriteError, match=r"has primary key \(id\) but the spec declares \(id, ts\)"):
            write_partition(conn, _target(rekeyed), day_rows("2024-03-01"))


def test_derived_table_in_sql(io, db_url) -> None:
    spec = register(
        TableSpec(
            "iotest",
            "event_notes",
            (Column("id", "text"), Column("ts", "timestamptz"), Column("word", "text")),
            ("id",),
            "ts",
        )
    )[0]
    with psycopg.connect(db_url) as conn:
        write_partition(conn, _target(EVENTS), day_rows("2024-03-01"))
        select = SqlInsert(
            "SELECT id, ts, split_part(note, ' ', 1) FROM iotest.events WHERE ts >= %(start)s AND ts < %(end)s"
        )
        stats = write_partition(conn, _target(spec), select)
    assert stats.rows == 5
    assert rows(db_url, "SELECT DISTINCT word FROM iotest.event_notes") == [("a",)]


def test_same_partition_writers_are_serialised(io, db_url) -> None:
    with psycopg.connect(db_url) as setup:
        write_partition(setup, _target(EVENTS), day_rows("2024-03-01"))
    holder = psycopg.connect(db_url)
    holder.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s || '/' || %s, 0))", ("iotest.events", "2024-03-01")
    )
    done: dict[str, float] = {}

    def write(key: str) -> None:
        with psycopg.connect(db_url) as conn:
            write_partition(conn, _target(EVENTS, key), day_rows(key, version="b"))
        done[key] = time.monotonic()

    threads = [threading.Thread(target=write, args=(k,)) for k in ("2024-03-01", "2024-03-02")]
    for t in threads:
        t.start()
    threads[1].join(10)
    time.sleep(0.5)
    assert "2024-03-02" in done and "2024-03-01" not in done  # the other partition is not blocked
    released = time.monotonic()
    holder.rollback()
    threads[0].join(10)
    assert done["2024-03-01"] >= released
    holder.close()


def test_load_input_returns_the_upstream_slice(io, db_url) -> None:
    @dg.asset(
        partitions_def=DAILY,
        ins={"events": dg.AssetIn(key=["iotest", "events"])},
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="mem",
    )
    def notes(events: pd.DataFrame) -> int:
        assert list(events["id"]) == [f"2024-03-02-{i}" for i in range(5)]
        return len(events)

    resources = {**io, "mem": dg.InMemoryIOManager()}
    assert dg.materialize([events_asset(), notes], partition_key="2024-03-02", resources=resources).success


def _indexes(db_url: str, table: str) -> set[str]:
    return {
        r[0]
        for r in rows(
            db_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'iotest' AND tablename = %s", (table,)
        )
    }


def test_large_initial_run_builds_secondary_indexes_once_at_the_end(io, db_url) -> None:
    import dataclasses

    register(dataclasses.replace(EVENTS, indexes=(("note",),), defer_indexes_from=3))
    try:
        result = dg.materialize([events_asset()], resources=io, tags=range_tags("2024-03-01", "2024-03-04"))
        assert result.success
        (totals,) = [e.asset_observation_data.asset_observation.metadata for e in result.get_asset_observation_events()]
        assert totals["rows_written"].value == 20 and totals["partitions_written"].value == 4
        assert "index_build_seconds" in totals  # the index was deferred, then built
        assert "events_note_idx" in _indexes(db_url, "events")
        # A later small run on the non-empty table maintains indexes as usual (nothing deferred).
        again = dg.materialize([events_asset("b")], resources=io, partition_key="2024-03-02")
        (totals,) = [e.asset_observation_data.asset_observation.metadata for e in again.get_asset_observation_events()]
        assert totals["rows_written"].value == 5 and "index_build_seconds" not in totals
    finally:
        register(EVENTS)


def _index_methods(db_url: str, table: str) -> dict[str, str]:
    return dict(
        rows(
            db_url,
            "SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass",
            (f"iotest.{table}",),
        )
    )


def test_hash_indexes_are_hash_deferred_or_not_and_replace_the_platforms_old_b_tree(io, db_url) -> None:
    import dataclasses

    from backfill_platform.io_managers import writer

    # A table from before: the same column under a B-tree, as the platform named it.
    register(dataclasses.replace(EVENTS, indexes=(("note",),)))
    try:
        assert dg.materialize([events_asset()], resources=io, partition_key="2024-03-01").success
        assert _index_methods(db_url, "events")["events_note_idx"] == "btree"
        writer._ensured.clear()  # a new process with the new spec
        register(dataclasses.replace(EVENTS, hash_indexes=("note",), defer_indexes_from=3))
        assert dg.materialize([events_asset("b")], resources=io, partition_key="2024-03-02").success
        methods = _index_methods(db_url, "events")
        assert methods.get("events_note_hash_idx") == "hash" and "events_note_idx" not in methods
        with psycopg.connect(db_url) as conn:  # an equality lookup can use it
            conn.execute("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in conn.execute("EXPLAIN SELECT * FROM iotest.events WHERE note = 'x'"))
        assert "events_note_hash_idx" in plan
        # Deferred into an empty table and built at the end: a hash index again.
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE iotest.events")
        writer._ensured.clear()
        result = dg.materialize([events_asset()], resources=io, tags=range_tags("2024-03-01", "2024-03-04"))
        (totals,) = [e.asset_observation_data.asset_observation.metadata for e in result.get_asset_observation_events()]
        assert "index_build_seconds" in totals
        assert _index_methods(db_url, "events").get("events_note_hash_idx") == "hash"
    finally:
        register(EVENTS)


def test_failed_deferred_run_still_leaves_its_indexes(io, db_url) -> None:
    import dataclasses

    register(dataclasses.replace(EVENTS, indexes=(("note",),), defer_indexes_from=3))

    @ranged_events
    def events(context):
        def batches(keys):
            for n, key in enumerate(keys):
                yield PartitionBatch(key, day_rows(key) if n < 2 else [(None, None, None, None, None)])

        return Batches(batches)

    try:
        with pytest.raises(WriteError, match="key column id is NULL"):
            dg.materialize([events], resources=io, tags=range_tags("2024-03-01", "2024-03-04"))
        assert "events_note_idx" in _indexes(db_url, "events")
        assert rows(db_url, "SELECT count(*) FROM iotest.events") == [(10,)]  # the two good days stayed
    finally:
        register(EVENTS)


def test_parallel_sql_partitions_into_a_fresh_table(io, db_url) -> None:
    """Derived partitions run on several connections; none may use the table before its creation committed."""
    from backfill_platform.io_managers import writer

    spec = register(
        TableSpec(
            "iotest",
            "fresh_words",
            (Column("id", "text"), Column("ts", "timestamptz"), Column("word", "text")),
            ("id",),
            "ts",
        )
    )[0]

    @dg.asset(
        key=["iotest", "fresh_words"],
        partitions_def=DAILY,
        io_manager_key="io_manager",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def fresh_words() -> SqlInsert:
        return SqlInsert(
            "SELECT id, ts, split_part(note, ' ', 2) FROM iotest.events WHERE ts >= %(start)s AND ts < %(end)s"
        )

    parallel = {"io_manager": PostgresIOManager(database_url=db_url, writers=4)}
    assert dg.materialize([events_asset()], resources=io, tags=range_tags("2024-03-01", "2024-03-08")).success
    for _ in range(3):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS iotest.fresh_words")
        writer._ensured.clear()
        result = dg.materialize([fresh_words], resources=parallel, tags=range_tags("2024-03-01", "2024-03-08"))
        assert result.success
        assert rows(db_url, f"SELECT count(*) FROM {spec.qualified}") == [(40,)]


def test_uncommitted_ddl_is_not_marked_ensured(io, db_url) -> None:
    """Other connections may skip table creation only once it committed (they would not see the table before)."""
    from backfill_platform.io_managers import writer

    with psycopg.connect(db_url) as conn:
        with conn.transaction(force_rollback=True):
            writer.ensure_table(conn, EVENTS, "iotest/events")
            assert not writer._ensured  # still uncommitted: a parallel writer must not rely on it
        write_partition(conn, _target(EVENTS), day_rows("2024-03-01"))
        assert (conn.info.dsn, EVENTS.qualified, True) in writer._ensured


def test_dataframe_for_a_range_is_split_and_committed_per_partition(io, db_url) -> None:
    frame = pd.DataFrame(
        [(*r[:4], None) for key in ("2024-03-10", "2024-03-11", "2024-03-12") for r in day_rows(key, 4)],
        columns=["id", "ts", "amount", "note", "payload"],
    )

    @ranged_events
    def events() -> pd.DataFrame:
        return frame

    result = dg.materialize([events], resources=io, tags=range_tags("2024-03-10", "2024-03-12"))
    assert result.success
    ledger = rows(db_url, "SELECT partition, rows FROM backfill_platform.ledger ORDER BY partition")
    assert ledger == [("2024-03-10", 4), ("2024-03-11", 4), ("2024-03-12", 4)]
    assert rows(db_url, "SELECT count(*) FROM iotest.events") == [(12,)]


def test_lazy_batches_go_to_two_writers_with_bounded_look_ahead(io, db_url) -> None:
    """Partitions commit on two connections, but a lazy source is never drained ahead of them (bounded memory)."""
    in_flight: list[int] = []

    @ranged_events
    def events(context):
        def batches(keys):
            for n, key in enumerate(keys):
                committed = rows(db_url, "SELECT count(*) FROM backfill_platform.ledger")[0][0] if n > 1 else 0
                in_flight.append(n - committed)  # batches handed over but not yet committed
                time.sleep(0.02)
                yield PartitionBatch(key, day_rows(key))

        return Batches(batches)

    assert dg.materialize([events], resources=io, tags=range_tags("2024-03-01", "2024-03-12")).success
    assert rows(db_url, "SELECT count(*), count(DISTINCT id) FROM iotest.events") == [(60, 60)]
    assert len(in_flight) == 12 and max(in_flight) <= 2


def test_a_derived_table_commits_with_its_partition_or_not_at_all(io, db_url) -> None:
    """Batches.derived runs in each partition's transaction: a failing derivation keeps neither table's rows."""
    words = register(
        TableSpec(
            "iotest",
            "words",
            (
                Column("id", "text", expr="e.id"),
                Column("ts", "timestamptz", expr="e.ts"),
                Column("word", "text", expr="split_part(e.note, ' ', 1)"),
                Column("i", "integer", expr="(e.payload->>'i')::integer"),
            ),
            ("id",),
            "ts",
            derived_from=Derivation(EVENTS, "FROM {parent} e WHERE e.ts >= %(start)s AND e.ts < %(end)s"),
        )
    )[0]

    def asset(bad_day: str | None):
        @ranged_events
        def events(context):
            def batches(keys):
                for key in keys:
                    day = day_rows(key)
                    if key == bad_day:  # valid for events, but not an integer for words
                        day[0] = (*day[0][:4], {"i": "one"})
                    yield PartitionBatch(key, day)

            return Batches(batches, children=[words])

        return events

    io1 = {"io_manager": PostgresIOManager(database_url=db_url, writers=1)}
    with pytest.raises(WriteError, match=r"asset iotest/words partition 2024-03-02: .*integer"):
        dg.materialize([asset("2024-03-02")], resources=io1, tags=range_tags("2024-03-01", "2024-03-03"))
    assert rows(db_url, "SELECT count(*) FROM iotest.events WHERE ts::date = '2024-03-02'") == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM iotest.words WHERE ts::date = '2024-03-02'") == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM iotest.words WHERE ts::date = '2024-03-01'") == [(5,)]
    assert dg.materialize([asset(None)], resources=io, tags=range_tags("2024-03-01", "2024-03-03")).success
    assert rows(db_url, "SELECT count(*), count(DISTINCT word) FROM iotest.words") == [(15, 1)]
    ledger = "SELECT asset, count(DISTINCT partition), count(*) FROM backfill_platform.ledger GROUP BY 1 ORDER BY 1"
    assert rows(db_url, ledger) == [("iotest/events", 3, 4), ("iotest/words", 3, 4)]  # 03-01 by both runs


@pytest.mark.timeout(60)
def test_a_failing_partition_stops_the_source_instead_of_hanging_the_run(io, db_url) -> None:
    """Day 1's writer fails while day 1's fetch still holds the only fetch thread and day 2's writer waits on rows
    that fetch thread would produce next: the run must fail with day 1's error, not wait forever."""
    from concurrent.futures import ThreadPoolExecutor

    from backfill_platform.resources.prefetch import Prefetch

    @ranged_events
    def events(context):
        fetch_pool = ThreadPoolExecutor(1)  # one fetch thread, as with BACKFILL_CANTON_STREAMS=1

        def produce(keys):
            streams = []

            def chunks(key: str, bad: bool):
                rows = day_rows(key)
                if bad:  # not a timestamp: COPY fails on the first chunk, the rest can never be delivered
                    rows[0] = (rows[0][0], "not a time", *rows[0][2:])
                for _ in range(50):
                    yield rows
                    rows = [(f"{r[0]}+", *r[1:]) for r in rows]

            try:
                for n, key in enumerate(keys):
                    stream = Prefetch(fetch_pool, lambda k=key, b=(n == 0): chunks(k, b), max_chunks=1)
                    streams.append(stream)
                    yield PartitionBatch(key, stream.rows())
            except BaseException:
                for stream in streams:
                    stream.close()
                fetch_pool.shutdown(wait=False, cancel_futures=True)
                raise

        return Batches(produce)

    started = time.monotonic()
    with pytest.raises(WriteError, match=r"asset iotest/events partition 2024-03-01: column ts"):
        dg.materialize([events], resources=io, tags=range_tags("2024-03-01", "2024-03-03"))
    assert time.monotonic() - started < 30
    assert rows(db_url, "SELECT count(*) FROM iotest.events WHERE ts::date = '2024-03-01'") == [(0,)]
