"""The one Definitions of the platform: each source's definitions merged with automation and shared resources."""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions.merge(dg.Definitions())
