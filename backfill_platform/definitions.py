"""The one Definitions of the platform: each source's definitions merged with the shared resources."""

import dagster as dg

from backfill_platform.io_managers.postgres import PostgresIOManager
from backfill_platform.sources import blaze, canton

defs = dg.Definitions.merge(
    blaze.defs,
    canton.defs,
    dg.Definitions(resources={"io_manager": PostgresIOManager()}),
)
