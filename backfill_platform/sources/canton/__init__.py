"""Canton / Splice Scan: ledger updates and their events, daily by record time."""

import dagster as dg

from backfill_platform.resources.apis import CantonApi
from backfill_platform.sources.canton import assets, checks, partitions, settings

CREDENTIALS: tuple[str, ...] = ()  # Scan declares no authentication
PARTITIONS = partitions.daily
ASSETS = (assets.scan,)


def resource() -> CantonApi:
    return CantonApi(
        max_attempts=settings.MAX_ATTEMPTS,
        max_retry_wait_s=settings.MAX_RETRY_WAIT_S,
    )


defs = dg.Definitions(
    assets=list(ASSETS),
    asset_checks=[checks.updates_unique_and_migrated, checks.events_unique_and_anchored, checks.updates_per_migration],
    resources={"canton": resource()},
)
