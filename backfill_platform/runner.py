"""Run a backfill from the command line as the UI does: validate the range, submit an asset backfill, make sure a
daemon (and, for a source without credentials, the sandbox) serves it, and follow it to the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

import dagster as dg

from backfill_platform import settings
from backfill_platform.backfills import (
    FINISHED,
    Progress,
    cancel,
    daemon,
    daemon_running,
    earlier_attempt,
    lineage,
    submit,
    targeted_partitions,
)
from backfill_platform.endpoints import serving
from backfill_platform.errors import ConfigurationError
from backfill_platform.follow import Follow, Followed, detached, watch_all
from backfill_platform.instance import platform_environment
from backfill_platform.sources import load, named
from backfill_platform.sources.contract import LoadedSource, Source


@dataclass(frozen=True)
class Range:
    first: str
    last: str


def validate_range(source: LoadedSource, first: str, last: str) -> Range:
    """Partition keys the source has, in order: one clear line otherwise."""
    from backfill_platform.config import parse_date  # YYYY-MM-DD only, unlike date.fromisoformat

    days: list[date] = []
    for flag, key in (("--from", first), ("--to", last)):
        try:
            days.append(parse_date(key))
        except ValueError:
            raise ConfigurationError(f"{flag} {key!r} is not a date; write YYYY-MM-DD") from None
    if days[1] < days[0]:
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


def latest_span(source: LoadedSource, days: int) -> Range:
    """The source's last `days` complete partitions: up to yesterday in its own time zone, so the freshness check of
    a demo's backfill passes."""
    keys = source.partitions.get_partition_keys()
    if not keys:
        raise ConfigurationError(f"{source.name} has no complete partition yet (it starts {source.config.start})")
    return Range(keys[max(0, len(keys) - days)], keys[-1])


RANGE_TAG = "backfill_platform/range"


def resolve_target(name: str, loaded: Sequence[LoadedSource]) -> tuple[LoadedSource, list[dg.AssetKey]]:
    """A source name (all its assets) or a comma list of asset keys of one source (`blaze/transactions`)."""
    if "/" not in name:
        source = named(name, loaded)
        return source, source.asset_keys
    keys = [dg.AssetKey.from_user_string(k.strip()) for k in name.split(",") if k.strip()]
    owners = {k.path[0] for k in keys}
    if len(owners) != 1:
        raise ConfigurationError(f"asset keys {name!r} belong to {len(owners)} sources; backfill one source at a time")
    source = named(owners.pop(), loaded)
    unknown = [k.to_user_string() for k in keys if k not in source.asset_keys]
    if unknown:
        raise ConfigurationError(
            f"{source.name} has no asset {unknown[0]}; its assets are "
            f"{', '.join(k.to_user_string() for k in source.asset_keys)}"
        )
    return source, keys


def use_platform_instance() -> dict[str, str]:
    """The platform's environment (one database, one DAGSTER_HOME), applied to this process as well: the CLI opens
    the same instance as the daemon and the run workers it serves."""
    env = platform_environment()
    os.environ.update({k: env[k] for k in (settings.DATABASE_URL, "DAGSTER_HOME", settings.HOME)})
    return env


class DaemonOnDemand:
    """The daemon (and the sandbox, for sources without credentials) this command runs when no daemon serves the
    instance: started when needed, also when a daemon it relied on goes away, and stopped with the command."""

    def __init__(
        self, stack: ExitStack, env: dict[str, str], sources: Sequence[Source], use_sandbox: bool | None, out: TextIO
    ) -> None:
        self.stack, self.env, self.sources, self.use_sandbox, self.out = stack, env, sources, use_sandbox, out
        self.proc: subprocess.Popen | None = None
        self.served = False

    def serve_apis(self) -> None:
        """The sandbox, if a source needs it, before anything is submitted (its URLs go to the daemon's runs)."""
        if not self.served:
            extra, endpoints = self.stack.enter_context(serving(self.sources, self.use_sandbox, self.env))
            self.env.update(extra)
            self.served = True
            for endpoint in endpoints:
                print(endpoint.describe(), file=self.out)

    def ensure(self, instance: dg.DagsterInstance) -> None:
        if self.proc is not None:
            if self.proc.poll() is not None:
                raise ConfigurationError(
                    f"the Dagster daemon this command started exited ({self.proc.returncode}); "
                    f"see {self.env['DAGSTER_HOME']}/daemon.log"
                )
            return
        if daemon_running(instance):
            return
        self.serve_apis()
        self.proc = self.stack.enter_context(daemon(self.env))
        print("a Dagster daemon runs for this command (none serves this instance)", file=self.out, flush=True)


def run_backfill(
    targets: Sequence[str],
    first: str,
    last: str,
    use_sandbox: bool | None = None,
    wait: bool = True,
    follow: Follow | None = None,
    refetch: bool = False,
    latest_days: int = 0,
) -> list[Progress] | list[str]:
    """Submit one asset backfill per target over first..last (the daemon runs them) and follow each to the end.

    A re-run of the same target and range continues the latest attempt that did not complete (its unfinished backfill,
    or a new one under a failed one's lineage), so nothing it committed is fetched again; `refetch` starts afresh.
    With `latest_days`, each source's own last `latest_days` complete partitions instead (its time zone's days).
    Returns the backfill ids at once with `wait=False`. When no daemon serves the instance, one runs for the
    duration, with the sandbox for every source whose credentials are unset."""
    from backfill_platform.database import database_url

    loaded = load()
    chosen = [resolve_target(t, loaded) for t in targets]
    if latest_days:
        spans = [latest_span(source, latest_days) for source, _ in chosen]
    else:
        spans = [validate_range(source, first, last) for source, _ in chosen]
    env = use_platform_instance()
    follow = follow or Follow(tty=sys.stdout.isatty())
    with dg.DagsterInstance.get() as instance, ExitStack() as stack:
        on_demand = DaemonOnDemand(stack, env, [s.source for s, _ in chosen], use_sandbox, follow.out)
        if not daemon_running(instance):
            on_demand.serve_apis()
        from backfill_platform.definitions import defs

        graph = defs.resolve_asset_graph()
        ids: list[str] = []
        try:
            _submit_all(instance, graph, chosen, spans, follow, ids, refetch)
            if not wait:
                if not daemon_running(instance):
                    print("no daemon serves this instance: `--follow ID` (or `backfill-platform dev`) runs them")
                return ids
            # a daemon started after the submission sees the backfills in its first iteration
            followed = [
                _followed(instance, backfill_id, [source]) for backfill_id, (source, _) in zip(ids, chosen, strict=True)
            ]
            return watch_all(instance, database_url(), followed, follow, lambda: on_demand.ensure(instance))
        except KeyboardInterrupt:
            for backfill_id in ids:
                detached(backfill_id, follow)
            raise


def _submit_all(
    instance: dg.DagsterInstance,
    graph: Any,
    chosen: Sequence[tuple[LoadedSource, list[dg.AssetKey]]],
    spans: Sequence[Range],
    follow: Follow,
    ids: list[str],
    refetch: bool,
) -> None:
    """Submit (or continue) each backfill; `ids` fills in as it goes (for a Ctrl-C message)."""
    from backfill_platform.database import database_url, redact

    for (source, keys), span in zip(chosen, spans, strict=True):
        tags = {**source.source.tags, RANGE_TAG: f"{span.first}..{span.last}"}
        prior = None if refetch else earlier_attempt(instance, tags, keys)
        if refetch:
            tags[settings.REFETCH_TAG] = "true"
        if prior is not None and prior.status not in FINISHED:
            print(f"continuing unfinished backfill {prior.backfill_id} (--refetch starts afresh)", file=follow.out)
            backfill_id = prior.backfill_id
        else:
            if prior is not None:  # failed or canceled: a new backfill commits under its lineage, so skips its days
                tags[settings.LINEAGE_TAG] = lineage(prior)
                print(
                    f"resuming after {prior.status.value} backfill {prior.backfill_id}: committed partitions are "
                    "not fetched again (--refetch starts afresh)",
                    file=follow.out,
                )
            backfill_id = submit_uninterrupted(
                instance, graph, keys, span.first, span.last, tags, f"{source.name} {span.first}..{span.last}"
            )
        ids.append(backfill_id)
        print(
            f"backfill {backfill_id}: {', '.join(k.to_user_string() for k in keys)} {span.first}..{span.last} "
            f"into {redact(database_url()).split('?')[0]}",
            file=follow.out,
            flush=True,
        )


def submit_uninterrupted(*args: Any) -> str:
    """`submit` with Ctrl-C held back until the backfill exists, so its id is always printed for --follow."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return submit(*args)
    finally:
        signal.signal(signal.SIGINT, previous)


def reattach(backfill_id: str, follow: Follow | None = None) -> Progress:
    """Follow an existing backfill (starting a daemon, and the sandbox, when none serves the instance)."""
    from backfill_platform.database import database_url

    env = use_platform_instance()
    follow = follow or Follow(tty=sys.stdout.isatty())
    with dg.DagsterInstance.get() as instance, ExitStack() as stack:
        backfill = instance.get_backfill(backfill_id)
        if backfill is None:
            raise ConfigurationError(f"no backfill {backfill_id!r} in this instance; `dagster` lists them in the UI")
        loaded = load()
        followed = _followed(instance, backfill_id, loaded)
        sources = [s for s in loaded if any(k.to_user_string() in followed.own for k in s.asset_keys)]
        on_demand = DaemonOnDemand(stack, env, [s.source for s in sources], None, follow.out)
        try:
            [state] = watch_all(instance, database_url(), [followed], follow, lambda: on_demand.ensure(instance))
            return state
        except KeyboardInterrupt:
            detached(backfill_id, follow)
            raise


def _followed(instance: dg.DagsterInstance, backfill_id: str, loaded: Sequence[LoadedSource]) -> Followed:
    """A backfill to follow, by the partitions it targets per asset, named after the sources they belong to."""
    backfill = instance.get_backfill(backfill_id)
    own = targeted_partitions(backfill) if backfill else {}
    if not own:
        raise ConfigurationError(f"backfill {backfill_id!r} targets no asset partitions; follow it in the UI")
    names = [s.name for s in loaded if any(k.to_user_string() in own for k in s.asset_keys)]
    return Followed(backfill_id, "+".join(names) or backfill_id, own)


def cancel_backfill(backfill_id: str) -> None:
    use_platform_instance()
    with dg.DagsterInstance.get() as instance:
        try:
            cancel(instance, backfill_id)
        except LookupError:
            raise ConfigurationError(f"no backfill {backfill_id!r} in this instance") from None
