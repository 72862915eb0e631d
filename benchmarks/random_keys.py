"""What keeping random-key indexes up costs as they grow: the part of Canton's sustained rate that falls (issue 19).

Canton's ids are hashes, so every insert lands on a random page of each id index. Once those indexes outgrow the
CPU's caches, each insert waits on memory for the buffer-mapping entry, the buffer header and the page (see the perf
profile in docs/canton-scale.md). Two A/Bs on the embedded server, each timing the same number of random-key inserts
into a grown table (two Canton-like ids: a primary key and a secondary index) and into an empty one:

- `index`: the secondary id index as a B-tree (today) or a hash index (4-byte hash codes, one bucket page per insert);
- `huge-pages`: `huge_pages=off` or `on`, the server restarted between them (needs huge pages reserved by root:
  `sysctl -w vm.nr_hugepages=N`); fewer TLB misses per random page.

`full_page_writes` is off while it runs (and restored): right after a restart or checkpoint the first touch of every
page is logged whole, which would swamp what is measured here; between checkpoints a real load logs none (the
sustained benchmark counts them). Variants take turns, medians of `--repeats`.
Run: `python -m benchmarks.random_keys index` or `… huge-pages` (embedded server only, not BACKFILL_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import psycopg

from backfill_platform import database, settings

BATCH = 300_000
# An id like Canton's event ids ('#1220' + 64 hex + ':0') and a contract-id-like second one, both random.
ROW = "'#1220' || md5(g::text) || md5((g * 7)::text) || ':0', '00' || md5((g * 13)::text) || md5((g * 3)::text)"


class Bench:
    def __init__(self, dsn: str, grown_rows: int) -> None:
        self.dsn, self.grown_rows, self.next = dsn, grown_rows, 1

    def sql(self, statement: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type] - built here from constants

    def table(self, name: str, method: str, rows: int) -> None:
        self.sql(f"DROP TABLE IF EXISTS rk_{name}; CREATE TABLE rk_{name} (id text PRIMARY KEY, c text)")
        self.insert(name, rows)
        self.sql(f"CREATE INDEX ON rk_{name} USING {method} (c)")
        self.sql(f"VACUUM ANALYZE rk_{name}")  # not in a transaction block: a statement of its own

    def insert(self, name: str, rows: int) -> float:
        started = time.perf_counter()
        self.sql(f"INSERT INTO rk_{name} SELECT {ROW} FROM generate_series({self.next}, {self.next + rows - 1}) g")
        self.next += rows
        return time.perf_counter() - started

    def grown_and_empty(self, name: str, method: str) -> tuple[float, float]:
        """A batch into the grown table, then the same number into a fresh empty one with the same indexes."""
        grown = self.insert(name, BATCH)
        self.table(f"{name}_empty", method, 0)
        return grown, self.insert(f"{name}_empty", BATCH)

    def prewarm(self, *names: str) -> None:
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        for name in names:
            self.sql(f"SELECT pg_prewarm('rk_{name}'), pg_prewarm('rk_{name}_pkey'), pg_prewarm('rk_{name}_c_idx')")


def _restart(*alter_system: str) -> str:
    """ALTER SYSTEM statements (one each: they cannot share a transaction), a restart, and huge_pages_status."""
    server = database._embedded_server(start=True)
    assert server is not None
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        for statement in alter_system:
            conn.execute(statement)  # type: ignore[arg-type] - built here from constants
    database._pg_ctl(server, "restart")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        return str(database.one_row(conn, "SELECT current_setting('huge_pages_status', true)")[0])


def index_ab(bench: Bench, repeats: int) -> dict[str, list[tuple[float, float]]]:
    for method in ("btree", "hash"):
        bench.table(method, method, bench.grown_rows)
    bench.prewarm("btree", "hash")
    times: dict[str, list[tuple[float, float]]] = {"btree": [], "hash": []}
    for _ in range(repeats):
        for method in times:
            times[method].append(bench.grown_and_empty(method, method))
            print(f"  {method}: grown {times[method][-1][0]:.2f} s, empty {times[method][-1][1]:.2f} s", flush=True)
    with psycopg.connect(bench.dsn) as conn:
        sizes = conn.execute("SELECT pg_relation_size('rk_btree_c_idx'), pg_relation_size('rk_hash_c_idx')").fetchone()
    assert sizes is not None
    print(f"  secondary index at {bench.grown_rows:,}+ rows: B-tree {sizes[0] >> 20} MB, hash {sizes[1] >> 20} MB")
    return times


def huge_pages_ab(bench: Bench, repeats: int) -> dict[str, list[tuple[float, float]]]:
    bench.table("btree", "btree", bench.grown_rows)
    times: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(repeats):
        for mode in times:
            status = _restart(f"ALTER SYSTEM SET huge_pages = {mode}")
            if status != mode:
                raise SystemExit(
                    f"huge_pages={mode} gave huge_pages_status={status}: reserve huge pages first "
                    "(as root: sysctl -w vm.nr_hugepages=2200 for 4 GB of shared_buffers)"
                )
            bench.prewarm("btree")
            bench.insert("btree", 20_000)  # the restart left the indexes' hot paths cold
            times[mode].append(bench.grown_and_empty("btree", "btree"))
            print(
                f"  huge_pages={mode}: grown {times[mode][-1][0]:.2f} s, empty {times[mode][-1][1]:.2f} s", flush=True
            )
    return times


def report(times: dict[str, list[tuple[float, float]]]) -> str:
    median: Callable[[str, int], float] = lambda k, i: statistics.median(t[i] for t in times[k])  # noqa: E731
    first, second = times
    lines = [
        f"{k}: {BATCH:,} inserts, median {median(k, 0):.2f} s into the grown table, {median(k, 1):.2f} s into an "
        f"empty one (grown ÷ empty {median(k, 0) / median(k, 1):.2f})"
        for k in times
    ]
    lines.append(f"{second} ÷ {first} into the grown table: {median(second, 0) / median(first, 0):.2f}× the time")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="random-key index upkeep on grown tables (issue 19)")
    parser.add_argument("ab", choices=("index", "huge-pages"))
    parser.add_argument("--rows", type=int, default=6_000_000, help="rows of the grown table (default 6,000,000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if os.environ.get(settings.DATABASE_URL):
        sys.exit(f"{settings.DATABASE_URL} is set: this benchmark restarts the embedded server; unset it")
    dsn = database.database_url()
    bench = Bench(dsn, args.rows)
    try:
        _restart("ALTER SYSTEM SET full_page_writes = off")
        times = index_ab(bench, args.repeats) if args.ab == "index" else huge_pages_ab(bench, args.repeats)
    finally:
        _restart("ALTER SYSTEM RESET huge_pages", "ALTER SYSTEM RESET full_page_writes")
        bench.sql("DROP TABLE IF EXISTS rk_btree, rk_btree_empty, rk_hash, rk_hash_empty")
    print(report(times))
    print(f"load average {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
