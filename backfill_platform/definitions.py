"""The one Definitions of the platform: every registered source, built from the environment, its automation (daily
schedules, gap-filling sensors, freshness checks), and the IO manager."""

import dagster as dg

from backfill_platform import automation
from backfill_platform.endpoints import use_sandbox_url
from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.sources import SOURCES, load

use_sandbox_url(SOURCES)  # BACKFILL_SANDBOX_URL: sources without credentials use that sandbox, in every process

loaded = load()
defs = dg.Definitions.merge(
    *(source.definitions() for source in loaded),
    automation.definitions(loaded),
    # Every run executes its steps in the run worker's own process: per step, the multiprocess executor starts a
    # process that imports Dagster and loads these definitions again (seconds each on two cores, ~40 s for a run of
    # one fetch step and its checks), and a run's steps are one fetch (a multi-asset) and its checks anyway.
    dg.Definitions(resources={"io_manager": PostgresIOManager()}, executor=dg.in_process_executor),
)
