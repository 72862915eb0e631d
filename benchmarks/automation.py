"""Automation benchmarks: a gap-sensor tick over ~4,000 daily partitions, and a check's seconds on a one-day run
as the table grows ten-fold (it must not grow with it)."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import psycopg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from backfill_platform.automation import sensors, settings
from backfill_platform.automation.jobs import lanes
from backfill_platform.io_managers import ledger
from backfill_platform.sources import load, named

GAPS = ("2016-03-04", "2016-03-05", "2019-07-19", "2024-05-01")  # four days nothing committed
SHORT = ("2018-01-02", "2018-01-03", "2021-06-30")  # committed without the last configured member


@dataclass
class TickResult:
    partitions: int
    first_tick_s: float
    ticks_s: list[float]
    message: str

    source: str = "blaze"

    def report(self) -> str:
        return (
            f"{self.source} gap sensor over {self.partitions:,} partitions: first tick {self.first_tick_s:.2f} s "
            f"(builds Dagster's status cache), then median {statistics.median(self.ticks_s):.2f} s, "
            f"max {max(self.ticks_s):.2f} s over {len(self.ticks_s)} ticks\n  {self.message}"
        )


def seed(
    instance: dg.DagsterInstance, dsn: str, keys: list[str], assets: list[dg.AssetKey], members: tuple[str, ...] = ()
) -> None:
    """Every partition committed (ledger) and materialized (Dagster), except GAPS; with `members`, each commit
    records them all but on the SHORT days, which lack the last one."""
    held = [k for k in keys if k not in GAPS]
    with psycopg.connect(dsn) as conn:
        ledger.ensure(conn)
        with conn.cursor().copy(
            "COPY backfill_platform.ledger (asset, partition, lineage, run_id, rows, bytes, seconds, members) "
            "FROM STDIN"
        ) as copy:
            for key in held:
                recorded = (list(members[:-1]) if key in SHORT else list(members)) if members else None
                for asset in assets:
                    copy.write_row((asset.to_user_string(), key, "bench", "bench", 500, 1, 0.1, recorded))
        # as the ledger keeps them: distinct and sorted (in the database's collation)
        conn.execute(
            "UPDATE backfill_platform.ledger SET members = ARRAY(SELECT DISTINCT m FROM unnest(members) m ORDER BY m) "
            "WHERE members IS NOT NULL"
        )
    # As a run's commits would log them, in batches (one event at a time takes minutes for 8,000)
    entries = [
        EventLogEntry(
            error_info=None,
            level=logging.INFO,
            user_message="",
            run_id=RUNLESS_RUN_ID,
            timestamp=time.time(),
            dagster_event=DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset_key=asset, partition=key)),
                job_name=RUNLESS_JOB_NAME,
            ),
        )
        for key in held
        for asset in assets
    ]
    for i in range(0, len(entries), 500):
        instance.event_log_storage.store_event_batch(entries[i : i + 500])


def tick(
    instance: dg.DagsterInstance, dsn: str, start: str = "2015-11-01", ticks: int = 5, wallets: int = 0
) -> TickResult:
    """Blaze (two assets, no members), or with `wallets` Stacks tracking that many wallets (members per day)."""
    source = "stacks" if wallets else "blaze"
    prefix = f"BACKFILL_{source.upper()}"
    environ = {f"{prefix}_START": start, f"{prefix}_GAPS_PER_TICK": "2"}
    members: tuple[str, ...] = ()
    if wallets:
        from backfill_platform.sandbox.core import SandboxConfig
        from backfill_platform.sandbox.generators import stacks

        members = stacks.wallets(SandboxConfig().seed, wallets)
        environ[f"{prefix}_WALLETS"] = ",".join(members)
    loaded = named(source, load(environ))
    [lane] = lanes(loaded)
    sensor = sensors.build_sensor(lane, lane.job(), settings.read(loaded, environ))
    keys = list(lane.partitions.get_partition_keys())
    seed(instance, dsn, keys, list(lane.asset_keys), members)

    def once() -> tuple[float, str]:
        context = dg.build_sensor_context(instance=instance)
        started = time.perf_counter()
        result = sensor(context)
        seconds = time.perf_counter() - started
        message = result.skip_message if isinstance(result, dg.SkipReason) else getattr(result, "cursor", "")
        return seconds, message or ""

    first, message = once()
    timed = [once()[0] for _ in range(ticks)]
    return TickResult(len(keys), first, timed, message, source)


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


@dataclass
class ChecksResult:
    sizes: list[int]  # canton.updates rows at each measurement
    seconds: list[dict[str, float]]  # per size: each check's step seconds on a one-day run
    whole_table_s: list[float]  # per size: the old whole-table duplicate scan, for comparison

    def report(self) -> str:
        lines = ["Canton checks on a one-day run (step seconds), small table vs 10x larger:"]
        for rows, per_check, whole in zip(self.sizes, self.seconds, self.whole_table_s, strict=True):
            checks = ", ".join(f"{name} {s:.3f}" for name, s in sorted(per_check.items()))
            lines.append(f"  {rows:,} updates: {checks}; a whole-table duplicate scan {whole:.3f} s")
        return "\n".join(lines)


def checks(dsn: str, small_days: int = 10, factor: int = 10, day: str = "2024-07-05") -> ChecksResult:
    """Load `small_days` of Canton, time the checks of a one-day run; load up to `factor` times as many days and
    time them again on the same day."""
    import httpx

    from backfill_platform.io_managers import writer
    from backfill_platform.io_managers.postgres import PostgresIOManager
    from backfill_platform.resources.apis import CantonApi
    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.server import SandboxProcess
    from backfill_platform.settings import RANGE_END_TAG, RANGE_START_TAG

    canton = named("canton", load({}))
    scan, canton_checks = list(canton.assets), canton.checks
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS canton CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS backfill_platform CASCADE")
    writer._ensured.clear()
    config = SandboxConfig(canton_bucket_tokens=10**6, canton_tokens_per_second=10**6)
    out = ChecksResult([], [], [])
    first = date(2024, 7, 1)
    with SandboxProcess(config) as sandbox:
        httpx.post(
            f"{sandbox.origin}/_sandbox/prerender/canton",
            json={"start": first.isoformat(), "days": small_days * factor + 1},
            timeout=600,
        ).raise_for_status()
        resources = {
            "canton": CantonApi(base_url=f"{sandbox.origin}/canton", rate="1000/s"),
            "io_manager": PostgresIOManager(database_url=dsn),
        }
        for lo, hi in ((0, small_days), (small_days, small_days * factor)):
            tags = {RANGE_START_TAG: (first + timedelta(days=lo)).isoformat()}
            tags[RANGE_END_TAG] = (first + timedelta(days=hi - 1)).isoformat()
            assert dg.materialize(scan, resources=resources, tags=tags).success
            with psycopg.connect(dsn) as conn:
                (rows,) = conn.execute("SELECT count(*) FROM canton.updates").fetchone() or (0,)
                started = time.perf_counter()
                conn.execute("SELECT count(*), count(DISTINCT update_id) FROM canton.updates").fetchone()
                out.whole_table_s.append(time.perf_counter() - started)
            instance = dg.DagsterInstance.ephemeral()
            result = dg.materialize(
                [*scan, *canton_checks],
                selection=dg.AssetSelection.checks(*canton_checks),
                resources=resources,
                tags={"dagster/partition": day},  # a one-day run, as the checks read it
                instance=instance,
            )
            assert result.success
            out.sizes.append(rows)
            stats = instance.get_run_step_stats(result.run_id)
            out.seconds.append({s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in stats})
    return out
