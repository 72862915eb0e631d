"""Canton scale-out benchmark: the same 20 days as one run, then as two runs side by side (two run workers).

Each run is its own process, as the run queue launches them, on the one rate budget and one PostgreSQL. Reports
rows/s of each run and of both together; the ratio says what a second run worker adds on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import psycopg

from backfill_platform.io_managers import writer
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import SandboxProcess

ONE_RANGE = """
import json, sys, time
import dagster as dg
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.resources.apis import CantonApi
from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG
from backfill_platform.sources import load, named
dsn, origin, first, last = sys.argv[1:5]
resources = {"canton": CantonApi(base_url=origin + "/canton", rate="1000/s"),
             "io_manager": PostgresIOManager(database_url=dsn)}
assets = named("canton", load()).assets
started = time.time()
ok = dg.materialize(assets, resources=resources, tags={RANGE_START_TAG: first, RANGE_END_TAG: last}).success
print(json.dumps({"ok": ok, "started": started, "ended": time.time()}))
"""


@dataclass
class RunFigure:
    first: str
    last: str
    rows: int
    started: float
    ended: float

    @property
    def rows_s(self) -> float:
        return self.rows / (self.ended - self.started)


@dataclass
class RunsResult:
    one: RunFigure
    two: list[RunFigure]
    load: str

    def report(self) -> str:
        both = sum(r.rows for r in self.two) / (max(r.ended for r in self.two) - min(r.started for r in self.two))
        each = ", ".join(f"{r.first}..{r.last} {r.rows:,} rows at {r.rows_s:,.0f} rows/s" for r in self.two)
        return (
            f"Canton {self.one.rows:,} rows (20 days): one run {self.one.rows_s:,.0f} rows/s; two runs side by side: "
            f"{each}; both together {both:,.0f} rows/s = {both / self.one.rows_s:.2f}x one run "
            f"({os.cpu_count()} cores; load average before: {self.load})"
        )


def _reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()


def _rows(dsn: str, first: str, last: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(rows), 0) FROM backfill_platform.ledger WHERE partition BETWEEN %s AND %s "
            "AND asset IN ('canton/updates', 'canton/events')",
            (first, last),
        ).fetchone()
    return int(row[0]) if row else 0


def _spawn(dsn: str, origin: str, first: str, last: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ONE_RANGE, dsn, origin, first, last], stdout=subprocess.PIPE)


def _finish(proc: subprocess.Popen, dsn: str, first: str, last: str) -> RunFigure:
    out, _ = proc.communicate(timeout=1800)
    figure = json.loads(out.decode().strip().splitlines()[-1])
    assert figure["ok"], f"run {first}..{last} failed"
    return RunFigure(first, last, _rows(dsn, first, last), figure["started"], figure["ended"])


def run(dsn: str, days: int = 20, scale: float = 10.0, first: str = "2024-07-01") -> RunsResult:
    start = date.fromisoformat(first)
    day = lambda n: (start + timedelta(days=n)).isoformat()  # noqa: E731
    config = SandboxConfig(scale=scale, canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with SandboxProcess(config) as sandbox:
        httpx.post(
            f"{sandbox.origin}/_sandbox/prerender/canton", json={"start": first, "days": days + 1}, timeout=900
        ).raise_for_status()
        _reset(dsn)
        one = _finish(_spawn(dsn, sandbox.origin, day(0), day(days - 1)), dsn, day(0), day(days - 1))
        _reset(dsn)
        half = days // 2
        spans = [(day(0), day(half - 1)), (day(half), day(days - 1))]
        procs = [_spawn(dsn, sandbox.origin, a, b) for a, b in spans]
        two = [_finish(p, dsn, a, b) for p, (a, b) in zip(procs, spans, strict=True)]
    return RunsResult(one, two, load)
