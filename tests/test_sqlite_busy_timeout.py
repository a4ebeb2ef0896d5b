"""SQLite's busy timeout (how long a writer waits for another process's write) is a setting."""

import shutil

import pytest
from tortoise.connection import get_connection

from server import config, database

pytestmark = pytest.mark.sqlite_only  # SQLite's own setting


async def test_the_busy_timeout_setting_reaches_the_connection(sqlite_template, tmp_path, monkeypatch):
    path = tmp_path / "busy.db"
    shutil.copyfile(sqlite_template, path)
    monkeypatch.setenv("PIPEWRIGHT_SQLITE_BUSY_TIMEOUT_MS", "1234")
    config.reload()
    await database.connect(f"sqlite://{path}")
    try:
        rows = await get_connection("default").execute_query_dict("PRAGMA busy_timeout")
    finally:
        await database.disconnect()
        monkeypatch.undo()
        config.reload()
    assert list(rows[0].values()) == [1234]
