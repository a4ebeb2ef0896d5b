"""ORM configuration, connecting, and applying the committed migrations (Tortoise's own)."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import OperationalError

from server.config import settings
from server.models import MODEL_MODULES

def sqlite_options() -> str:
    config = settings()
    # A negative cache_size is KiB (a positive one would be pages).
    return f"busy_timeout={config.sqlite_busy_timeout_ms}&synchronous=NORMAL&cache_size=-{config.sqlite_cache_kib}"


def _with_options(url: str) -> str:
    if url.startswith("sqlite://") and "?" not in url and url != "sqlite://:memory:":
        return f"{url}?{sqlite_options()}"
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def postgres_server_settings(*, migrating: bool = False) -> dict[str, str]:
    """Set on each connection as it opens (startup parameters: a session's settings stay its own).
    Migrations may rewrite big tables: no statement timeout for them, but the lock timeout stays (a migration
    waiting on a lock would queue every other writer behind it)."""
    config = settings()
    return {
        "lock_timeout": str(config.pg_lock_timeout_ms),
        "statement_timeout": "0" if migrating else str(config.pg_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(config.pg_idle_in_transaction_timeout_ms),
        "tcp_keepalives_idle": str(config.pg_keepalives_idle_s),
        "tcp_keepalives_interval": str(config.pg_keepalives_interval_s),
        "tcp_keepalives_count": str(config.pg_keepalives_count),
    }


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A pooled PostgreSQL connection that costs no round trip when it goes back to the pool: asyncpg's reset
    still rolls back a transaction left open (a cancelled request) and drops listeners, but sends no reset
    query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL: one statement per transaction, 12 % of the
    engine's). Safe because nothing here leaves session state behind: locks are transaction-scoped
    (pg_advisory_xact_lock), nothing listens for notifications, no cursor outlives its transaction, and settings
    are startup parameters
    (`postgres_server_settings`); tests/test_pool_release.py holds the code to that."""

    def get_reset_query(self) -> str:
        return ""


def _postgres(url: str, *, migrating: bool) -> dict[str, Any]:
    """The URL's connection with our timeouts and pool sizes; what the URL sets itself (`?maxsize=`) wins."""
    config = settings()
    connection = expand_db_url(url)
    credentials = connection["credentials"]
    credentials["server_settings"] = {**postgres_server_settings(migrating=migrating),
                                      **(credentials.get("server_settings") or {})}
    credentials.setdefault("timeout", config.pg_connect_timeout_s)  # asyncpg: connecting
    if not migrating:
        credentials.setdefault("command_timeout", config.pg_command_timeout_s)
    credentials.setdefault("minsize", config.db_pool_min_connections)
    credentials.setdefault("maxsize", config.db_pool_max_connections)
    credentials["connection_class"] = PooledConnection
    return connection


def _connection(url: str, *, migrating: bool = False) -> str | dict[str, Any]:
    url = _with_options(url)
    if url.startswith(("postgres://", "asyncpg://")):
        return _postgres(url, migrating=migrating)
    if not url.startswith("sqlite://") or url == "sqlite://:memory:":
        return url
    connection = expand_db_url(url)
    connection["engine"] = "server.sqlite_immediate"
    return connection


def tortoise_config(url: str | None = None, *, migrating: bool = False) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(url or settings().database_url, migrating=migrating)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "server.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# The `tortoise` CLI reads this: `tortoise -c server.database.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config(os.environ.get("PIPEWRIGHT_DATABASE_URL", "sqlite://pipewright.db"))


MIGRATIONS = Path(__file__).parent / "migrations"
ROOT = Path(__file__).parent.parent


class MigrationFailed(Exception):
    """The child process that applies the migrations failed or ran out of time (its output says why)."""


def committed_migrations() -> set[str]:
    """The migrations in this checkout, by the name Tortoise records them under (`0001_initial`)."""
    return {path.stem for path in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py")}


async def applied_migrations(url: str | None = None) -> set[str]:
    """The migrations the database at `url` records as applied (one query); none when it has no record table."""
    await Tortoise.init(config=tortoise_config(url))
    try:
        _, rows = await connections.get("default").execute_query(
            "SELECT name FROM tortoise_migrations WHERE app = 'models'")
    except OperationalError:  # a new database: no tortoise_migrations table yet
        return set()
    finally:
        await Tortoise.close_connections()
    return {row["name"] for row in rows}


async def is_current(url: str | None = None) -> bool:
    """True when the database has applied every migration of this checkout: nothing to migrate (one it records
    that this checkout lacks, from a newer version, Tortoise ignores too)."""
    return committed_migrations() <= await applied_migrations(url)


async def migrate(url: str | None = None) -> None:
    """Apply every migration not yet applied to the database at `url`.

    A database already at the newest migration costs one query: Tortoise's migration loader imports every
    migration and rebuilds the models' state step by step (~45 MiB that stays resident for a fresh database),
    so it only runs when there is something to apply."""
    if await is_current(url):
        return
    from tortoise.migrations.api.migrate import migrate as tortoise_migrate

    try:
        await tortoise_migrate(config=tortoise_config(url, migrating=True))
    finally:  # a failed migration too: an open SQLite connection's thread would keep the process from exiting
        await Tortoise.close_connections()


async def migrate_in_child(url: str | None = None, *, timeout_s: float | None = None) -> None:
    """Apply the migrations in a child process (`python -m server.cli migrate`, its output on ours) when the
    database is behind: the migration machinery's memory leaves with the child instead of staying in a
    long-running server. Raises MigrationFailed when the child fails or outlives `timeout_s` (it is killed)."""
    url = url or settings().database_url
    if await is_current(url):
        return
    timeout_s = timeout_s if timeout_s is not None else settings().migrate_timeout_s
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": url,
           "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", "migrate", env=env)
    try:
        status = await asyncio.wait_for(child.wait(), timeout_s)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise MigrationFailed(f"migrating took longer than {timeout_s:g} s (PIPEWRIGHT_MIGRATE_TIMEOUT_S): "
                              "the migration was stopped") from None
    if status != 0:
        raise MigrationFailed(f"migrating failed (the migrate process exited with status {status})")


async def connect(url: str | None = None) -> None:
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def disconnect() -> None:
    await Tortoise.close_connections()
