"""A SQLite client whose transactions begin with BEGIN IMMEDIATE.

With a deferred BEGIN, a transaction that reads and then writes fails at once with "database
is locked" when another process writes meanwhile (the busy timeout does not cover the upgrade
from reader to writer). Taking the write lock at BEGIN makes such writers wait their turn.
"""

import sqlite3
from typing import Any

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.exceptions import TransactionManagementError


def _insert(connection: sqlite3.Connection, query: str, values: list[Any]) -> int:
    cursor = connection.execute(query, values)
    try:
        return cursor.lastrowid or 0
    finally:
        cursor.close()


class _RowidFromCursor(SqliteClient):
    """An insert's id from its cursor, not from a second statement (aiosqlite's `execute_insert` runs
    `SELECT last_insert_rowid()` after every insert). It runs on aiosqlite's own thread through its private
    `_execute`/`_conn` (aiosqlite 0.2x): check it when aiosqlite is upgraded (the statement-budget test and
    every insert in the suite fail if it breaks)."""

    @translate_exceptions
    async def execute_insert(self, query: str, values: list[Any]) -> int:
        async with self.acquire_connection() as connection:
            self.log.debug("%s: %s", query, values)
            return int(await connection._execute(_insert, connection._conn, query, values))


class ImmediateTransactionWrapper(_RowidFromCursor, SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(_RowidFromCursor):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
