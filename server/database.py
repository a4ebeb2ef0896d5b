"""ORM configuration, connecting, and applying the committed migrations (Tortoise's own)."""

import os
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs or py.typed
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

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


async def migrate(url: str | None = None) -> None:
    """Apply every migration not yet applied to the database at `url`."""
    await tortoise_migrate(config=tortoise_config(url, migrating=True))
    await Tortoise.close_connections()


async def connect(url: str | None = None) -> None:
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def disconnect() -> None:
    await Tortoise.close_connections()
