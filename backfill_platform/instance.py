"""The Dagster instance every process of the platform shares: one database, one DAGSTER_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from backfill_platform import settings


def dagster_home() -> Path:
    """A DAGSTER_HOME under BACKFILL_HOME whose dagster.yaml is the project's own (linked, not copied)."""
    home = settings.home() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    target = settings.project_root() / "dagster.yaml"
    if not (link.is_symlink() and link.resolve() == target.resolve()):
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return home


def platform_environment() -> dict[str, str]:
    """The environment every Dagster process of the platform runs with: one database, one home."""
    from backfill_platform.database import database_url

    env = dict(os.environ)
    env[settings.HOME] = str(settings.home())
    env[settings.DATABASE_URL] = database_url()
    env["DAGSTER_HOME"] = str(dagster_home())
    return env
