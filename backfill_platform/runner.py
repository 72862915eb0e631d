"""Run a backfill from the command line: validate the range, use the sandbox when no credentials are set, and run
it as one Dagster run on the platform's instance (so it shows in the UI and is retried like any other run)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import dagster as dg

from backfill_platform import config, settings
from backfill_platform.errors import ConfigurationError
from backfill_platform.instance import dagster_home
from backfill_platform.sources import load, named
from backfill_platform.sources.contract import LoadedSource, Source


@dataclass(frozen=True)
class Range:
    first: str
    last: str


@dataclass(frozen=True)
class BackfillResult:
    source: LoadedSource
    result: dg.ExecuteInProcessResult
    seconds: float

    @property
    def success(self) -> bool:
        return self.result.success


def validate_range(source: LoadedSource, first: str, last: str) -> Range:
    """Partition keys the source has, in order: one clear line otherwise."""
    for flag, key in (("--from", first), ("--to", last)):
        try:
            date.fromisoformat(key)
        except ValueError:
            raise ConfigurationError(f"{flag} {key!r} is not a date; write YYYY-MM-DD") from None
    if last < first:
        raise ConfigurationError(f"the range is inverted: --from {first} is after --to {last}; swap them")
    keys = source.partitions.get_partition_keys()
    if not keys:
        raise ConfigurationError(f"{source.name} has no complete partition yet (it starts {source.config.start})")
    if first < keys[0]:
        raise ConfigurationError(
            f"{source.name} partitions start at {keys[0]}; --from {first} is before that "
            f"(set {source.source.start_var} for older history)"
        )
    if last > keys[-1]:
        raise ConfigurationError(
            f"{source.name} has no complete partition {last} yet (the latest is {keys[-1]}); lower --to"
        )
    return Range(first, last)


@contextmanager
def api_environment(source: Source, use_sandbox: bool | None) -> Iterator[str]:
    """The real API when its credentials are set, else the sandbox (started here, stopped after)."""
    name = source.name
    base_url_var = config.source_var(name, "base_url")
    missing = [v for v in source.credentials if not os.environ.get(v)]
    if not source.credentials and use_sandbox is None:  # no credentials to tell by: the base URL decides
        use_sandbox = not os.environ.get(base_url_var)
    if use_sandbox is False and missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; export "
            f"the {name} credentials, or run against the sandbox with --sandbox"
        )
    if use_sandbox is None:
        use_sandbox = len(missing) == len(source.credentials)
        if missing and not use_sandbox:
            raise ConfigurationError(
                f"{' and '.join(missing)} not set while other {name} credentials are; "
                "set them all, or unset them all to use the sandbox"
            )
    if not use_sandbox:
        yield os.environ.get(base_url_var, "the real API")
        return
    from backfill_platform.sandbox.server import SandboxProcess, credentials

    saved = dict(os.environ)
    with SandboxProcess() as sandbox:
        os.environ.update(sandbox.base_urls())
        os.environ.update(credentials(sandbox.config))
        try:
            yield f"the sandbox at {sandbox.origin}"
        finally:
            os.environ.clear()
            os.environ.update(saved)


def run_backfill(name: str, first: str, last: str, use_sandbox: bool | None = None) -> BackfillResult:
    from backfill_platform.database import database_url, redact

    source = named(name, load())
    span = validate_range(source, first, last)
    os.environ.setdefault(settings.DATABASE_URL, database_url())
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    with api_environment(source.source, use_sandbox) as where:
        print(f"backfilling {name} {span.first}..{span.last} from {where} into {redact(database_url()).split('?')[0]}")
        from backfill_platform.definitions import defs

        job = defs.resolve_implicit_global_asset_job_def()
        with dg.DagsterInstance.get() as instance:
            started = time.monotonic()
            result = job.execute_in_process(
                instance=instance,
                asset_selection=source.asset_keys,
                tags={settings.RANGE_START_TAG: span.first, settings.RANGE_END_TAG: span.last, **source.source.tags},
                raise_on_error=False,
            )
    return BackfillResult(source, result, time.monotonic() - started)
