"""The registry of sources: the definitions, the CLI and automation iterate it. A new source is a folder and a line
in SOURCES."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backfill_platform.errors import ConfigurationError
from backfill_platform.io_managers.spec import spec_for
from backfill_platform.sources import alpaca, blaze, canton, racing, stacks
from backfill_platform.sources.contract import LoadedSource, Source
from backfill_platform.sources.fetching import with_partitions_per_run

SOURCES: tuple[Source, ...] = (blaze.SOURCE, canton.SOURCE, racing.SOURCE, alpaca.SOURCE, stacks.SOURCE)


def load(environ: Mapping[str, str] | None = None, sources: Sequence[Source] = SOURCES) -> tuple[LoadedSource, ...]:
    """Every source built with its settings from the environment; a bad declaration or value is one line."""
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(f"source {twice[0]!r} is declared twice in the registry; keep one declaration")
    loaded = []
    for source in sources:
        config = source.read_config(environ)
        partitions = source.partitions(config)
        assets = with_partitions_per_run(source.assets(config, partitions), config.partitions_per_run)
        built = LoadedSource(source, config, partitions, assets)
        for key in built.asset_keys:
            if spec_for(key.path) is None:
                raise ConfigurationError(
                    f"source {source.name}: asset {key.to_user_string()} has no table spec; "
                    f"declare it in sources/{source.name}/tables.py"
                )
        loaded.append(built)
    return tuple(loaded)


def named(name: str, loaded: Sequence[LoadedSource]) -> LoadedSource:
    """The loaded source called `name`, or one line listing the ones there are."""
    for source in loaded:
        if source.name == name:
            return source
    raise ConfigurationError(f"unknown source {name!r}; choose one of {', '.join(s.name for s in loaded)}")
