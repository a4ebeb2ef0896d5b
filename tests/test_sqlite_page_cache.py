"""SQLite's page cache per connection is a setting (PIPEWRIGHT_SQLITE_CACHE_KIB), 16 MiB unless set."""

import shutil

import pytest
from tortoise.connection import get_connection

from server import config, database

pytestmark = pytest.mark.sqlite_only  # SQLite's own setting


@pytest.mark.parametrize(("setting", "kib"), [(None, 16384), ("2048", 2048)])
async def test_the_page_cache_setting_reaches_the_connection(sqlite_template, tmp_path, monkeypatch, setting, kib):
    path = tmp_path / "cache.db"
    shutil.copyfile(sqlite_template, path)
    if setting is None:
        monkeypatch.delenv("PIPEWRIGHT_SQLITE_CACHE_KIB", raising=False)
    else:
        monkeypatch.setenv("PIPEWRIGHT_SQLITE_CACHE_KIB", setting)
    config.reload()
    await database.connect(f"sqlite://{path}")
    try:
        rows = await get_connection("default").execute_query_dict("PRAGMA cache_size")
    finally:
        await database.disconnect()
        monkeypatch.undo()
        config.reload()
    assert list(rows[0].values()) == [-kib]
