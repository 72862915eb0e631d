"""Where each source's API is: the real one when its credentials are set, else the local sandbox.

One decision for every launch path the platform starts itself (`backfill-platform dev`, `backfill`, `demo`): the
sandbox runs for as long as the command, and every Dagster process the command starts (webserver, daemon, the run
workers they launch) inherits its base URLs and credentials through the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from backfill_platform import config
from backfill_platform.errors import ConfigurationError
from backfill_platform.sources.contract import Source

SANDBOX_URL = "BACKFILL_SANDBOX_URL"


@dataclass(frozen=True)
class Endpoint:
    source: str
    sandbox: bool
    origin: str  # the real API's origin; for the sandbox, filled in once it runs

    def describe(self) -> str:
        return f"{self.source}: {'sandbox at ' if self.sandbox else 'real API at '}{self.origin}"


def choose(source: Source, environ: Mapping[str, str], use_sandbox: bool | None = None) -> Endpoint:
    """The real API when the source's credentials are set; the sandbox when none are (or when asked).

    A base URL set to a real origin with credentials missing is an error, never a silent fall-back to the sandbox."""
    name = source.name
    base_url_var = config.source_var(name, "base_url")
    base_url = environ.get(base_url_var, "")
    missing = [v for v in source.credentials if not environ.get(v)]
    if use_sandbox is None:
        use_sandbox = (not base_url) if not source.credentials else len(missing) == len(source.credentials)
        if source.credentials and use_sandbox and base_url and not _is_sandbox(base_url, environ):
            raise ConfigurationError(
                f"{base_url_var} is set to {base_url} but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set; export the {name} credentials, "
                f"or unset {base_url_var} to use the sandbox"
            )
    if use_sandbox:
        return Endpoint(name, True, "")
    if missing:
        if len(missing) < len(source.credentials):
            raise ConfigurationError(
                f"{' and '.join(missing)} not set while other {name} credentials are; "
                "set them all, or unset them all to use the sandbox"
            )
        raise ConfigurationError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; export "
            f"the {name} credentials, or run against the sandbox with --sandbox"
        )
    return Endpoint(name, False, base_url or "the API's public origin")


def _is_sandbox(url: str, environ: Mapping[str, str]) -> bool:
    sandbox = environ.get(SANDBOX_URL, "")
    return bool(sandbox) and url.startswith(sandbox.rstrip("/"))


def use_sandbox_url(sources: Sequence[Source], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """BACKFILL_SANDBOX_URL (a running `backfill-platform sandbox`): every source without credentials uses it.

    The one setting that lets `dagster dev` or `dagster asset materialize`, used directly, run against the sandbox:
    read when the definitions load, in every process, so the run workers get the same URLs and keys."""
    env = os.environ if environ is None else environ
    url = env.get(SANDBOX_URL, "").rstrip("/")
    if not url:
        return []
    try:
        offered = httpx.get(f"{url}/_sandbox/env", timeout=5).raise_for_status().json()
    except (httpx.HTTPError, ValueError):
        raise ConfigurationError(
            f"{SANDBOX_URL}={url} does not answer as a sandbox; start one there with "
            "`backfill-platform sandbox --port N`, or unset it"
        ) from None
    used = []
    for source in sources:
        base_url_var = config.source_var(source.name, "base_url")
        if any(env.get(v) for v in source.credentials) or (
            env.get(base_url_var) and not _is_sandbox(env[base_url_var], env)
        ):
            continue  # this source has its own API
        env[base_url_var] = offered[base_url_var]
        env.update({v: offered[v] for v in source.credentials})
        env.update(_unset_settings(source, offered, env))
        used.append(source.name)
    return used


def _unset_settings(source: Source, offered: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The sandbox's own settings for this source (e.g. the wallets it simulates) that the environment leaves unset."""
    prefix = f"BACKFILL_{source.name.upper()}_"
    return {k: v for k, v in offered.items() if k.startswith(prefix) and not env.get(k)}


@contextmanager
def serving(
    sources: Sequence[Source], use_sandbox: bool | None = None, environ: Mapping[str, str] | None = None
) -> Iterator[tuple[dict[str, str], list[Endpoint]]]:
    """Start the sandbox if any source needs it; yields the environment additions and each source's endpoint."""
    env = dict(os.environ if environ is None else environ)
    chosen = [choose(s, env, use_sandbox) for s in sources]
    if not any(e.sandbox for e in chosen):
        yield {}, chosen
        return
    from backfill_platform.sandbox.env import base_urls, credentials, source_settings
    from backfill_platform.sandbox.server import SandboxProcess

    with SandboxProcess() as sandbox:
        urls, secrets = base_urls(sandbox.origin), {**credentials(sandbox.config), **source_settings(sandbox.config)}
        extra: dict[str, str] = {SANDBOX_URL: sandbox.origin}
        for source, endpoint in zip(sources, chosen, strict=True):
            if endpoint.sandbox:
                var = config.source_var(source.name, "base_url")
                extra[var] = urls[var]
                extra.update({v: secrets[v] for v in source.credentials})
                extra.update(_unset_settings(source, secrets, env))
        yield extra, [Endpoint(e.source, True, f"{sandbox.origin}/{e.source}") if e.sandbox else e for e in chosen]
