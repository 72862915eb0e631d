"""Session fixtures: one embedded PostgreSQL, a fresh database per test module, Dagster on that database."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backfill_platform import database, settings
from backfill_platform.sandbox.core import SandboxConfig
from backfill_platform.sandbox.server import SandboxProcess

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded server under a temporary BACKFILL_HOME, stopped at the end of the session."""
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in (settings.HOME, settings.DATABASE_URL)}
    os.environ[settings.HOME] = str(home)
    os.environ.pop(settings.DATABASE_URL, None)
    database.database_url.cache_clear()
    url = database.database_url()
    yield url
    database.database_url.cache_clear()
    os.environ[settings.HOME] = str(home)
    os.environ.pop(settings.DATABASE_URL, None)
    database.stop_embedded()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    database.database_url.cache_clear()


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return re.sub(r"(://[^/]*/)[^?]*", rf"\g<1>{name}", url, count=1)


def create_database(server_url: str, prefix: str) -> str:
    name = f"{re.sub(r'[^a-z0-9]+', '_', prefix.lower())[:40]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


@pytest.fixture(scope="module")
def db_url(pg_server: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this test module, exported as BACKFILL_DATABASE_URL for code under test."""
    url = create_database(pg_server, request.module.__name__.rsplit(".", 1)[-1])
    saved = os.environ.get(settings.DATABASE_URL)
    os.environ[settings.DATABASE_URL] = url
    database.database_url.cache_clear()
    yield url
    database.database_url.cache_clear()
    if saved is None:
        os.environ.pop(settings.DATABASE_URL, None)
    else:
        os.environ[settings.DATABASE_URL] = saved


@pytest.fixture
def dagster_home(tmp_path: Path, db_url: str) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the project's own, on this module's database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    return home


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxProcess]:
    """All five simulators with their real limits, in a child process on a free loopback port."""
    with SandboxProcess(SandboxConfig()) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> Iterator[SandboxProcess]:
    """The shared sandbox with counters and faults reset, and revisions back to 0 afterwards."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()
    for api in ("blaze", "racing"):
        sandbox_server.set_revision(api, 0)
