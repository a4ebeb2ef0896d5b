"""A pooled PostgreSQL connection goes back to the pool without a reset round trip (server/database.py:
PooledConnection), and that is only safe while nothing leaves session state on a connection: a transaction a
cancelled task left open is still rolled back, and the code uses no session-scoped locks, listeners or
settings."""

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from server.models import Pipeline

SERVER = Path(__file__).resolve().parent.parent / "server"


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_a_transaction_sends_no_reset_when_its_connection_goes_back(db, monkeypatch):
    sent: list[str] = []
    original = asyncpg.Connection.execute

    async def execute(self: asyncpg.Connection, query: str, *args: object, **kwargs: object) -> str:
        sent.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", execute)
    for _ in range(3):
        async with in_transaction():
            await Pipeline.all().count()
    assert not [query for query in sent if "RESET ALL" in query or "UNLISTEN" in query], sent


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_a_transaction_a_cancelled_task_left_open_is_rolled_back_before_the_connection_is_reused(db):
    inside = asyncio.Event()

    async def abandoned() -> None:
        async with in_transaction():
            await Pipeline.create(name="Never committed", entity_type="deal")
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(abandoned())
    await asyncio.wait_for(inside.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pool = get_connection("default")._pool  # type: ignore[attr-defined]  # Tortoise's asyncpg pool
    for _ in range(pool.get_max_size()):  # every pooled connection, the abandoned one among them
        async with in_transaction():
            assert not await Pipeline.filter(name="Never committed").exists()


# Session state a connection would carry to the next user of the pool once no reset query clears it.
SESSION_STATE = re.compile(
    r"pg_advisory_lock\(|pg_try_advisory_lock\(|\bLISTEN\b|add_listener\(|\bWITH HOLD\b|SET SESSION|"
    r"^\s*SET (?!LOCAL)\w+|set_config\([^)]*false\)", re.MULTILINE)  # SQL as this code spells it


def test_the_server_leaves_no_session_state_on_a_pooled_connection():
    found = [f"{path.relative_to(SERVER)}: {match.group(0)}"
             for path in sorted(SERVER.rglob("*.py")) if "migrations" not in path.parts
             for match in SESSION_STATE.finditer(path.read_text())]
    assert found == []
