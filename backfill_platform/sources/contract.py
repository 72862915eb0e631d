"""What a source declares, and what the platform builds from it (the definitions, the CLI and automation)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any, NoReturn

import dagster as dg

from backfill_platform import config
from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.spec import TableSpec
from backfill_platform.settings import API_TAG
from backfill_platform.sources.checks import DailyCheck

PARTITIONS_PER_RUN = "PARTITIONS_PER_RUN"  # every source has this setting; see SourceConfig


@dataclass(frozen=True)
class Option:
    """A source setting beyond its start day, read from BACKFILL_<SOURCE>_<NAME> when the definitions are built."""

    name: str
    default: str
    parse: Callable[[str], Any]
    expect: str  # completes "BACKFILL_X_NAME='…' is not …", e.g. "a time zone; write e.g. America/New_York"


def every_day(day: date) -> bool:
    return True


@dataclass(frozen=True)
class Automation:
    """What a daily schedule of this source re-runs: the trailing days whose data may still change, when the day's
    data is final (HH:MM in the source's time zone), and any days ahead the API already publishes.

    `final_after`: how long after a partition ends its data is complete (negative: before its end, e.g. a market
    day's bars after the close; the partitions then need an `end_offset` so that day's key exists). `rows_expected`:
    whether a day should have rows at all (not weekends or holidays for a market); a committed day with zero rows
    where rows are expected is refetched once by the gap sensor, and the schedule skips a tick whose latest day
    expects none (the next tick's run covers it)."""

    window_days: int
    time_of_day: str
    days_ahead: int = 0
    final_after: timedelta = timedelta(0)
    rows_expected: Callable[[date], bool] = every_day


@dataclass(frozen=True)
class SourceConfig:
    """A source's settings as read from the environment."""

    source: str
    start: date
    timezone: str  # of the partitions and of automation: the source's, or its TIMEZONE option when it has one
    options: Mapping[str, Any] = field(default_factory=dict)
    # BACKFILL_<SOURCE>_PARTITIONS_PER_RUN: a ranged backfill becomes runs of this many partitions, which the run
    # queue spreads over run workers; None: one run for the whole range.
    partitions_per_run: int | None = None

    def __getitem__(self, name: str) -> Any:
        return self.options[name]


PartitionsFactory = Callable[[SourceConfig], dg.TimeWindowPartitionsDefinition]
AssetsFactory = Callable[[SourceConfig, dg.TimeWindowPartitionsDefinition], Sequence[dg.AssetsDefinition]]
# A source's checks: checks of days (DailyCheck, built with their asset's partitions) or built definitions; those on
# assets that exist only as configured (e.g. one asset per configured timeframe) come from the config.
Check = DailyCheck | dg.AssetChecksDefinition
ChecksFactory = Callable[[SourceConfig, dg.TimeWindowPartitionsDefinition], Sequence[Check]]


@dataclass(frozen=True)
class Source:
    """One API's history: everything the platform needs to know, and nothing it has to guess by attribute."""

    name: str  # resource key, pool, API tag, asset-key prefix and Postgres schema
    title: str
    first_day: date  # the API's documented first day; BACKFILL_<SOURCE>_START overrides it
    timezone: str  # the partitions' time zone (an Option named TIMEZONE overrides it)
    credentials: tuple[str, ...]  # environment variables holding secrets; none set → the sandbox
    tables: tuple[TableSpec, ...]
    resource: Callable[[SourceConfig], dg.ConfigurableResource]
    partitions: PartitionsFactory
    assets: AssetsFactory
    checks: Sequence[Check] | ChecksFactory
    automation: Automation
    options: tuple[Option, ...] = ()
    # Who a partition holds (MemberBatches): the Option listing them (e.g. "WALLETS"), or a function of the config
    # giving the ids the ledger records (e.g. symbol|feed|adjustment). Status counts a partition of a table with a
    # member_column materialized only when each is committed and settled there; the gap sensor refetches a
    # committed partition that lacks one.
    members: str | Callable[[SourceConfig], Sequence[str]] | None = None

    @property
    def tags(self) -> dict[str, str]:
        """Run tags of this source's runs: the run queue limits concurrent runs per API on this tag."""
        return {API_TAG: self.name}

    @property
    def start_var(self) -> str:
        return config.source_var(self.name, "start")

    def read_config(self, environ: Mapping[str, str] | None = None) -> SourceConfig:
        start = config.read(
            self.start_var, self.first_day.isoformat(), config.parse_date, "a date; write YYYY-MM-DD", environ
        )
        options = {
            o.name: config.read(config.source_var(self.name, o.name), o.default, o.parse, o.expect, environ)
            for o in self.options
        }
        per_run_var = config.source_var(self.name, PARTITIONS_PER_RUN)
        per_run = (os.environ if environ is None else environ).get(per_run_var, "").strip() and config.read(
            per_run_var,
            "",
            config.parse_positive_int,
            "a whole number of partitions of at least 1 (unset: one run for the whole range)",
            environ,
        )
        return SourceConfig(self.name, start, options.get("TIMEZONE", self.timezone), options, per_run or None)


@dataclass(frozen=True)
class LoadedSource:
    """A source built with its configuration: the partitions, assets, checks and resource Dagster runs."""

    source: Source
    config: SourceConfig
    partitions: dg.TimeWindowPartitionsDefinition
    assets: tuple[dg.AssetsDefinition, ...]

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def asset_keys(self) -> list[dg.AssetKey]:
        return [key for a in self.assets for key in a.keys]

    @cached_property  # built once: the definitions, jobs and sensors must see the same check definitions
    def checks(self) -> list[dg.AssetChecksDefinition]:
        declared = self.source.checks
        with warnings.catch_warnings():  # partitioned checks are preview: said once in sources/checks.py, not per load
            warnings.simplefilter("ignore", dg.PreviewWarning)
            checks = declared(self.config, self.partitions) if callable(declared) else declared
            return [c.build(self.partitions_of(c.asset)) if isinstance(c, DailyCheck) else c for c in checks]

    @property
    def members(self) -> tuple[str, ...] | None:
        """The configured members, as the ledger records them (None: the source's partitions hold no members)."""
        declared = self.source.members
        if declared is None:
            return None
        return tuple(declared(self.config) if callable(declared) else self.config[declared])

    def partitions_of(self, key: dg.AssetKey) -> dg.PartitionsDefinition | None:
        """An asset's own partitions: the source's, a later-starting set (Racing's racecards), or none (a master)."""
        return next((a.partitions_def for a in self.assets if key in a.keys), self.partitions)

    def definitions(self) -> dg.Definitions:
        missing = [v for v in self.source.credentials if not os.environ.get(v)]
        resource = MissingCredentials(api=self.name, variables=", ".join(missing)) if missing else None
        return dg.Definitions(
            assets=list(self.assets),
            asset_checks=self.checks,
            resources={self.name: resource or self.source.resource(self.config)},
        )


class MissingCredentials(dg.ConfigurableResource):
    """Stands in for an API resource whose credentials are not set when the definitions load: the UI still loads
    every source, and a run of this one fails in one line that says what to set (not a Dagster EnvVar traceback)."""

    api: str
    variables: str

    def session(self) -> NoReturn:
        raise ConfigurationError(
            f"{self.variables} {'is' if ',' not in self.variables else 'are'} not set; export the {self.api} "
            "credentials, or run against the sandbox: `backfill-platform dev`, or `backfill-platform sandbox` "
            "and BACKFILL_SANDBOX_URL=<its URL> for every Dagster process"
        )
