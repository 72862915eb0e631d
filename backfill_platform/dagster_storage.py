"""Dagster's run, event-log and schedule storage on the platform's PostgreSQL.

dagster.yaml names these classes so that every Dagster process (webserver, daemon, run worker, `dagster` CLI)
resolves the database the same way as the platform, with no URL to copy into the instance config.
"""

from __future__ import annotations

from typing import Any

from dagster import Field, StringSource
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from backfill_platform.database import database_url, sqlalchemy_url

_CONFIG = {
    "postgres_url": Field(
        StringSource, is_required=False, description="Defaults to the platform's database (database.py)."
    )
}


def storage_url(config_value: dict[str, Any]) -> str:
    return sqlalchemy_url(config_value.get("postgres_url") or database_url())


class PlatformRunStorage(PostgresRunStorage):
    """Run storage on the platform database."""

    @classmethod
    def config_type(cls) -> dict:
        return _CONFIG

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> PlatformRunStorage:
        return cls(postgres_url=storage_url(config_value), inst_data=inst_data)


class PlatformEventLogStorage(PostgresEventLogStorage):
    """Event-log storage on the platform database."""

    @classmethod
    def config_type(cls) -> dict:
        return _CONFIG

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> PlatformEventLogStorage:
        return cls(postgres_url=storage_url(config_value), inst_data=inst_data)


class PlatformScheduleStorage(PostgresScheduleStorage):
    """Schedule and sensor storage on the platform database."""

    @classmethod
    def config_type(cls) -> dict:
        return _CONFIG

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> PlatformScheduleStorage:
        return cls(postgres_url=storage_url(config_value), inst_data=inst_data)
