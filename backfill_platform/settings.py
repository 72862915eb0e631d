"""Environment variable names and non-secret defaults, in one place (design §6)."""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "BACKFILL_"
DATABASE_URL = "BACKFILL_DATABASE_URL"
HOME = "BACKFILL_HOME"
DEFAULT_HOME = ".backfill_platform"

SOURCES = ("blaze", "canton", "racing", "alpaca", "stacks")

# Dagster's run-queue tag that limits concurrent runs per API (see dagster.yaml).
API_TAG = "backfill_platform/api"
# The commit lineage a run resumes (see io_managers/ledger.py): set on a backfill that continues an earlier attempt.
LINEAGE_TAG = "backfill_platform/lineage"
# Set on a run (the CLI's --refetch sets it on its backfill): partitions are fetched again even for members they hold.
REFETCH_TAG = "backfill_platform/refetch"
# Schema of the platform's own bookkeeping tables (ledger, rate budget).
PLATFORM_SCHEMA = "backfill_platform"
# The run tags Dagster gives a single run over a partition range (UI backfill, --partition-range, CLI backfill).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def base_url_var(source: str) -> str:
    return f"BACKFILL_{source.upper()}_BASE_URL"


def rate_var(source: str) -> str:
    return f"BACKFILL_{source.upper()}_RATE"


def home() -> Path:
    """The directory holding the embedded server's data and Dagster's local artifacts."""
    return Path(os.environ.get(HOME) or DEFAULT_HOME).expanduser().resolve()


def project_root() -> Path:
    """The checkout holding dagster.yaml and workspace.yaml (the package is installed editable)."""
    return Path(__file__).resolve().parent.parent
