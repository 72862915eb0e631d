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
    dg.Definitions(resources={"io_manager": PostgresIOManager()}),
)
