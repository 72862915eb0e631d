"""Run a backfill from the command line: validate the range, use the sandbox when no credentials are set, and run
it as one Dagster run on the platform's instance (so it shows in the UI and is retried like any other run)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from types import ModuleType

import dagster as dg

from backfill_platform import settings
from backfill_platform.errors import ConfigurationError


def source_module(name: str) -> ModuleType:
    from backfill_platform.sources import blaze, canton

    available = {"blaze": blaze, "canton": canton}
    if name not in available:
        raise ConfigurationError(
            f"unknown source {name!r}; choose one of {', '.join(sorted(available))} "
            f"({', '.join(s for s in settings.SOURCES if s not in available)} are not built yet)"
        )
    return available[name]


@dataclass(frozen=True)
class Range:
    first: str
    last: str


def validate_range(source: ModuleType, name: str, first: str, last: str) -> Range:
    """Partition keys the source has, in order: one clear line otherwise."""
    partitions: dg.TimeWindowPartitionsDefinition = source.PARTITIONS
    for flag, key in (("--from", first), ("--to", last)):
        try:
            date.fromisoformat(key)
        except ValueError:
            raise ConfigurationError(f"{flag} {key!r} is not a date; write YYYY-MM-DD") from None
    if last < first:
        raise ConfigurationError(f"the range is inverted: --from {first} is after --to {last}; swap them")
    keys = partitions.get_partition_keys()
    if first < keys[0]:
        raise ConfigurationError(f"{name} partitions start at {keys[0]}; --from {first} is before that")
    if last > keys[-1]:
        raise ConfigurationError(f"{name} has no complete partition {last} yet (the latest is {keys[-1]}); lower --to")
    return Range(first, last)


@contextmanager
def api_environment(name: str, source: ModuleType, use_sandbox: bool | None) -> Iterator[str]:
    """The real API when its credentials are set, else the sandbox (started here, stopped after)."""
    missing = [v for v in source.CREDENTIALS if not os.environ.get(v)]
    if not source.CREDENTIALS and use_sandbox is None:  # no credentials to tell by: the base URL decides
        use_sandbox = not os.environ.get(settings.base_url_var(name))
    if use_sandbox is False and missing:
        raise ConfigurationError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; export "
            f"the {name} credentials, or run against the sandbox with --sandbox"
        )
    if use_sandbox is None:
        use_sandbox = len(missing) == len(source.CREDENTIALS)
        if missing and not use_sandbox:
            raise ConfigurationError(
                f"{' and '.join(missing)} not set while other {name} credentials are; "
                "set them all, or unset them all to use the sandbox"
            )
    if not use_sandbox:
        yield os.environ.get(settings.base_url_var(name), "the real API")
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


def run_backfill(name: str, first: str, last: str, use_sandbox: bool | None = None) -> dg.ExecuteInProcessResult:
    from backfill_platform.cli import dagster_home
    from backfill_platform.database import database_url

    source = source_module(name)
    span = validate_range(source, name, first, last)
    os.environ.setdefault(settings.DATABASE_URL, database_url())
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    with api_environment(name, source, use_sandbox) as where:
        print(f"backfilling {name} {span.first}..{span.last} from {where} into {database_url().split('?')[0]}")
        from backfill_platform.definitions import defs

        job = defs.resolve_implicit_global_asset_job_def()
        with dg.DagsterInstance.get() as instance:
            started = time.monotonic()
            result = job.execute_in_process(
                instance=instance,
                asset_selection=[key for a in source.ASSETS for key in a.keys],
                tags={settings.RANGE_START_TAG: span.first, settings.RANGE_END_TAG: span.last, settings.API_TAG: name},
                raise_on_error=False,
            )
            result.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    return result
