"""PostgreSQL's timeouts are set on every pooled connection: a lock wait, a statement, a transaction left idle
(a host frozen or cut off mid-transaction) end instead of stalling every writer behind them."""

import asyncio

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from server import config, database
from server.kinds import RunStatus
from server.models import Deal, RuleRun
from server.rules import engine, queue
from server.services import elements as element_service
from server.actor import SYSTEM
from tests.support import add_rule, make_pipeline, wait_until

pytestmark = [pytest.mark.production_backend, pytest.mark.production_only]


async def _reconnect(db, monkeypatch, **settings: str) -> None:
    """This process's pool again, with the settings given (PIPEWRIGHT_ names without the prefix)."""
    for name, value in settings.items():
        monkeypatch.setenv(f"PIPEWRIGHT_{name}", value)
    config.reload()
    await database.disconnect()
    await database.connect(db.database_url)


async def _show(name: str) -> str:
    rows = await get_connection("default").execute_query_dict(f"SHOW {name}")
    return str(rows[0][name])


async def test_every_pooled_connection_carries_the_configured_timeouts(db, monkeypatch):
    await _reconnect(db, monkeypatch, PG_LOCK_TIMEOUT_MS="1500", PG_STATEMENT_TIMEOUT_MS="20000",
                     PG_IDLE_IN_TRANSACTION_TIMEOUT_MS="7000", PG_KEEPALIVES_IDLE_S="25",
                     PG_KEEPALIVES_INTERVAL_S="5", PG_KEEPALIVES_COUNT="4")
    seen = [await asyncio.gather(*(_show(n) for n in ("lock_timeout", "statement_timeout",
                                                      "idle_in_transaction_session_timeout")))
            for _ in range(3)]  # read again after the pool reset its connections on release
    assert seen == [["1500ms", "20s", "7s"]] * 3
    assert [await _show(n) for n in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")] \
        == ["25", "5", "4"]


async def test_the_defaults_suit_production(db, monkeypatch):
    for name in ("PG_LOCK_TIMEOUT_MS", "PG_STATEMENT_TIMEOUT_MS", "PG_IDLE_IN_TRANSACTION_TIMEOUT_MS"):
        monkeypatch.delenv(f"PIPEWRIGHT_{name}", raising=False)
    await _reconnect(db, monkeypatch)
    assert [await _show(n) for n in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")] \
        == ["5s", "30s", "1min"]


async def test_a_transaction_left_idle_is_cut_and_the_next_one_works(db, monkeypatch):
    await _reconnect(db, monkeypatch, PG_IDLE_IN_TRANSACTION_TIMEOUT_MS="300")
    with pytest.raises(Exception) as cut:
        async with in_transaction():
            await Deal.all().count()
            await asyncio.sleep(1.5)  # a frozen host: the server ends its transaction and session
            await Deal.all().count()
    # The server closed the session (asyncpg reports the lost connection, not the server's reason).
    assert isinstance(cut.value, asyncpg.InterfaceError) and "connection" in str(cut.value), cut.value
    async with in_transaction():
        assert await Deal.all().count() == 0


async def test_a_statement_past_the_statement_timeout_is_cancelled(db, monkeypatch):
    await _reconnect(db, monkeypatch, PG_STATEMENT_TIMEOUT_MS="200")
    with pytest.raises(Exception, match="statement timeout"):
        await get_connection("default").execute_query("SELECT pg_sleep(2)")


async def test_a_run_that_waits_past_the_lock_timeout_is_retried_not_failed(db, monkeypatch, worker_paused):
    """Another client holds the deal's row lock; the run gives up after lock_timeout and is scheduled again."""
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_comment", {"text": "Hello"})
    deal = await element_service.create_element("deal", {"title": "Locked"}, stage_id=stages["new"].id, actor=SYSTEM)
    await _reconnect(db, monkeypatch, PG_LOCK_TIMEOUT_MS="200")
    run = await RuleRun.get(element_type="deal", element_id=deal.id)
    assert await queue.claim([run.id]) == [run.id]
    holder = await asyncpg.connect(db.database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT id FROM deal WHERE id = $1 FOR UPDATE", deal.id)
            status = await asyncio.wait_for(engine.execute(run.id), timeout=10)
    finally:
        await holder.close()
    run = await RuleRun.get(id=run.id)
    assert (status, run.status, run.attempts) == (RunStatus.scheduled, RunStatus.scheduled, 1)
    assert "lock timeout" in (run.error or "")

    async def due_again() -> bool:  # the retry's backoff (PIPEWRIGHT_RETRY_BASE_MS) has passed
        return run.id in await queue.claim_due()

    await wait_until(due_again, timeout_s=10, what="the retry to be due")
    assert await engine.execute(run.id) == RunStatus.succeeded
