"""ORM configuration, connecting, and applying the committed migrations (Tortoise's own)."""

import os
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from server.config import settings
from server.models import MODEL_MODULES

SQLITE_OPTIONS = "busy_timeout=5000&synchronous=NORMAL"


def _with_options(url: str) -> str:
    if url.startswith("sqlite://") and "?" not in url and url != "sqlite://:memory:":
        return f"{url}?{SQLITE_OPTIONS}"
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def _connection(url: str) -> str | dict[str, Any]:
    url = _with_options(url)
    if not url.startswith("sqlite://") or url == "sqlite://:memory:":
        return url
    connection = expand_db_url(url)
    connection["engine"] = "server.sqlite_immediate"
    return connection


def tortoise_config(url: str | None = None) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(url or settings().database_url)},
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
    await tortoise_migrate(config=tortoise_config(url))
    await Tortoise.close_connections()


async def connect(url: str | None = None) -> None:
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def disconnect() -> None:
    await Tortoise.close_connections()
