"""Racing assets: masters, results in multi-day chunks bucketed by race date, racecards one call a day; the
runners, entities and bookmakers inside them derived in SQL in the same transactions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, NamedTuple, cast

import dagster as dg

from backfill_platform.io_managers.spec import Batches, PartitionBatch
from backfill_platform.resources.apis import RacingApi
from backfill_platform.resources.http import share
from backfill_platform.resources.prefetch import Prefetch
from backfill_platform.sources.blaze.client import windows
from backfill_platform.sources.contract import SourceConfig
from backfill_platform.sources.fetching import fetched_tables
from backfill_platform.sources.racing import partitions, settings
from backfill_platform.sources.racing.client import RacingClient
from backfill_platform.sources.racing.tables import (
    BOOKMAKERS,
    COURSES,
    ENTITIES,
    RACECARD_RUNNERS,
    RACECARDS,
    REGIONS,
    RESULTS,
    RUNNERS,
)


class ResultRow(NamedTuple):
    """One row of racing.results (field names are its columns); the whole race stays in `payload`."""

    race_id: str
    date: date
    region: str | None
    course: str | None
    course_id: str | None
    off_dt: datetime | None
    race_name: str | None
    type: str | None
    class_: str | None
    pattern: str | None
    dist_f: str | None
    dist_y: int | None
    going: str | None
    surface: str | None
    runner_count: int
    payload: dict


RESULT_COLUMNS = tuple("class" if f == "class_" else f for f in ResultRow._fields)


class RacecardRow(NamedTuple):
    race_id: str
    date: date
    region: str | None
    course: str | None
    course_id: str | None
    off_dt: datetime | None
    race_name: str | None
    type: str | None
    race_class: str | None
    distance_f: str | None
    going: str | None
    field_size: int | None
    is_abandoned: bool | None
    payload: dict


def _int(text: Any) -> int | None:
    return int(text) if isinstance(text, str) and text.strip().lstrip("-").isdigit() else None


def _dt(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def result_row(race: dict) -> ResultRow:
    return ResultRow(
        race_id=race["race_id"],
        date=date.fromisoformat(race["date"]),
        region=race.get("region"),
        course=race.get("course"),
        course_id=race.get("course_id"),
        off_dt=_dt(race.get("off_dt")),
        race_name=race.get("race_name"),
        type=race.get("type"),
        class_=race.get("class"),
        pattern=race.get("pattern"),
        dist_f=race.get("dist_f"),
        dist_y=_int(race.get("dist_y")),
        going=race.get("going"),
        surface=race.get("surface"),
        runner_count=len(race.get("runners") or []),
        payload=race,
    )


def racecard_row(card: dict) -> RacecardRow:
    return RacecardRow(
        race_id=card["race_id"],
        date=date.fromisoformat(card["date"]),
        region=card.get("region"),
        course=card.get("course"),
        course_id=card.get("course_id"),
        off_dt=_dt(card.get("off_dt")),
        race_name=card.get("race_name"),
        type=card.get("type"),
        race_class=card.get("race_class"),
        distance_f=card.get("distance_f"),
        going=card.get("going"),
        field_size=_int(card.get("field_size")),
        is_abandoned=card.get("is_abandoned") if isinstance(card.get("is_abandoned"), bool) else None,
        payload=card,
    )


def ahead(batches: Iterable[PartitionBatch], depth: int) -> Iterator[PartitionBatch]:
    """The batches produced on a thread of their own, up to `depth` ahead of the writers: at 2 requests/s the API is
    the wall, so it keeps being called while earlier days commit (measured: 0.80 of the allowed rate without)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="racing-fetch-ahead")
    try:
        # Prefetch queues chunks of rows; here each chunk is one whole partition's batch.
        one_each = cast(Iterable[Sequence[Sequence[Any]]], ([b] for b in batches))
        for batch in Prefetch(pool, lambda: one_each, max_chunks=depth).rows():
            yield cast(PartitionBatch, batch)
    finally:
        pool.shutdown(wait=False)


def _run_summary(session: Any, start: dict) -> Any:
    return lambda: {f"api_{k}": v for k, v in session.metrics.since(start).items()}


def fetch_results(context: dg.AssetExecutionContext, api: RacingApi, chunk_days: int, regions: list[str]) -> Batches:
    """The pending race days in the fewest calls: consecutive days cut into chunks of `chunk_days`, 100 races a
    page with skip; a chunk's days are committed (each on its own) once the chunk is complete, since the API does
    not document the order of results across dates."""
    session = api.session("results")
    client = RacingClient(session, regions)
    run_start = session.metrics.snapshot()

    def produce(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        return ahead(chunks(keys), chunk_days + 1)  # the next chunk is fetched while this one's days commit

    def chunks(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        for chunk in windows([date.fromisoformat(k) for k in keys], chunk_days):
            before = session.metrics.snapshot()
            by_day: dict[date, list[ResultRow]] = {day: [] for day in chunk}
            races, total = client.results_of(chunk)
            stray = 0
            for race in races:
                row = result_row(race)
                if row.date in by_day:
                    by_day[row.date].append(row)
                else:
                    stray += 1
            if stray:
                context.log.warning(f"{stray} races of {chunk[0]}..{chunk[-1]} are dated outside that range")
            cost = session.metrics.since(before)
            calls = share(int(cost["calls"]), [len(rows) for rows in by_day.values()])
            received = sum(len(rows) for rows in by_day.values())
            for (day, rows), day_calls in zip(by_day.items(), calls, strict=True):
                yield PartitionBatch(
                    day.isoformat(),
                    rows,
                    columns=RESULT_COLUMNS,
                    metadata={
                        "api_calls": day_calls,
                        "chunk": f"{chunk[0]}..{chunk[-1]}",
                        "chunk_api_total": total,
                        "chunk_races": received,
                        "chunk_api_calls": int(cost["calls"]),
                        "chunk_429s": int(cost["http_429"]),
                    },
                )

    return Batches(produce, summary=_run_summary(session, run_start))


def fetch_racecards(context: dg.AssetExecutionContext, api: RacingApi, regions: list[str]) -> Batches:
    """One call per pending day (a day's racecards fit one page of 500)."""
    session = api.session("racecards")
    client = RacingClient(session, regions)
    run_start = session.metrics.snapshot()

    def produce(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        return ahead(days(keys), settings.RACECARD_DAYS_AHEAD)

    def days(keys: Sequence[str]) -> Iterator[PartitionBatch]:
        for key in keys:
            day = date.fromisoformat(key)
            before = session.metrics.snapshot()
            rows = [racecard_row(card) for page in client.racecards(day) for card in page]
            stray = [r for r in rows if r.date != day]
            if stray:
                context.log.warning(f"{len(stray)} racecards asked for {day} are dated otherwise; left out")
            cost = session.metrics.since(before)
            yield PartitionBatch(
                key,
                [r for r in rows if r.date == day],
                columns=RacecardRow._fields,
                metadata={"api_calls": int(cost["calls"]), "api_429s": int(cost["http_429"])},
            )

    return Batches(produce, summary=_run_summary(session, run_start))


def fetch_master(what: str) -> Any:
    """A whole master table in one call; written as one unpartitioned slice."""

    def fetch(context: dg.AssetExecutionContext, api: RacingApi) -> Batches:
        session = api.session("courses")
        client = RacingClient(session)
        run_start = session.metrics.snapshot()

        def produce(keys: Sequence[str]) -> Iterator[PartitionBatch]:
            if what == "courses":
                rows = [(c["id"], c.get("course"), c.get("region_code"), c.get("region")) for c in client.courses()]
                columns = COURSES.column_names
            else:
                rows = [(r["region_code"], r.get("region")) for r in client.regions()]
                columns = REGIONS.column_names
            yield PartitionBatch(keys[0], rows, columns=columns)

        return Batches(produce, summary=_run_summary(session, run_start))

    return fetch


def build(config: SourceConfig, days: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    chunk_days, regions = config["CHUNK_DAYS"], config["REGIONS"]
    return [
        fetched_tables(source="racing", parent=COURSES, partitions_def=None, fetch=fetch_master("courses")),
        fetched_tables(source="racing", parent=REGIONS, partitions_def=None, fetch=fetch_master("regions")),
        fetched_tables(
            source="racing",
            parent=RESULTS,
            children=[RUNNERS, *ENTITIES],
            partitions_def=days,
            fetch=lambda context, api: fetch_results(context, api, chunk_days, regions),
        ),
        fetched_tables(
            source="racing",
            parent=RACECARDS,
            children=[RACECARD_RUNNERS, BOOKMAKERS],
            partitions_def=partitions.racecard_days(config),
            fetch=lambda context, api: fetch_racecards(context, api, regions),
        ),
    ]
