"""The one Definitions of the platform: every registered source, built from the environment, and the IO manager."""

import dagster as dg

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.sources import load

defs = dg.Definitions.merge(
    *(source.definitions() for source in load()),
    dg.Definitions(resources={"io_manager": PostgresIOManager()}),
)
