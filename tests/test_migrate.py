"""Migrating: a database with nothing to apply costs one query and never loads the migrations (their loader
kept ~45 MiB resident in the server), and `serve` applies new migrations in a child process it waits for."""

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from server import database
from tests.support.servers import ROOT

# Run in a fresh interpreter: which migration modules did `database.migrate` load?
LOADED = """
import asyncio, sys
from server import database
asyncio.run(database.migrate(sys.argv[1]))
print(sorted(name for name in sys.modules if name.startswith("server.migrations.0")))
"""


def _loaded_by_migrate(url: str) -> str:
    done = subprocess.run([sys.executable, "-c", LOADED, url], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.strip()


@pytest.mark.sqlite_only
def test_migrating_a_current_database_loads_no_migration(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "current.db"
    shutil.copyfile(sqlite_template, path)
    assert _loaded_by_migrate(f"sqlite://{path}") == "[]"


@pytest.mark.sqlite_only
def test_migrating_a_new_database_loads_every_migration(tmp_path: Path) -> None:
    loaded = _loaded_by_migrate(f"sqlite://{tmp_path / 'new.db'}")
    assert all(f"server.migrations.{name}" in loaded for name in database.committed_migrations())


@pytest.mark.production_backend
async def test_a_migrated_database_has_nothing_to_migrate(db: object) -> None:
    """On both backends: the test database (migrated by the fixtures) records every committed migration."""
    from server.config import settings

    assert await database.is_current(settings().database_url)


@pytest.mark.sqlite_only
async def test_a_new_database_is_migrated_by_a_child_process(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'new.db'}"
    assert not await database.is_current(url)
    await database.migrate_in_child(url, timeout_s=120)
    assert await database.is_current(url)


@pytest.mark.sqlite_only
async def test_a_failing_migration_stops_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "clash.db"
    with sqlite3.connect(path) as connection:  # a table the first migration creates, but no migration record
        connection.execute("CREATE TABLE pipeline (id INTEGER PRIMARY KEY)")
    with pytest.raises(database.MigrationFailed, match="exited with status 1"):
        await database.migrate_in_child(f"sqlite://{path}", timeout_s=120)


@pytest.mark.sqlite_only
def test_serve_refuses_to_start_when_migrating_fails(tmp_path: Path) -> None:
    path = tmp_path / "clash.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE pipeline (id INTEGER PRIMARY KEY)")
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", "0",
                           "--database-url", f"sqlite://{path}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "pipewright serve: migrating failed" in done.stderr
