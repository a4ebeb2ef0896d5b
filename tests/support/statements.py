"""Every SQL statement this process sends to the database while a block runs, on either backend."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tortoise.connection import get_connection


@asynccontextmanager
async def traced(kind: str, monkeypatch: pytest.MonkeyPatch, saw: Callable[[str], None]) -> AsyncIterator[None]:
    """Calls `saw(sql)` for each statement: SQLite's trace callback, or asyncpg's execute paths wrapped."""
    if kind == "sqlite":
        raw = get_connection("default")._connection  # type: ignore[attr-defined]  # aiosqlite's, opened by database.connect
        await raw.set_trace_callback(saw)
        try:
            yield
        finally:
            await raw.set_trace_callback(None)
        return
    import asyncpg

    def wrap(name: str, sql_of: Callable[..., str | None]) -> None:
        original = getattr(asyncpg.Connection, name)

        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if (sql := sql_of(*args, **kwargs)) is not None:
                saw(sql)
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, name, counted)

    # execute(query) without arguments goes straight to the protocol; with arguments it goes through _execute.
    wrap("execute", lambda query, *args, **_: query if not args else None)
    wrap("_execute", lambda query, *_, **__: query)
    wrap("_executemany", lambda query, *_, **__: query)
    yield
