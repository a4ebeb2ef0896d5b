"""Nothing is lost: a killed worker or a stopped server delays work, never drops or doubles it."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.models import RuleRun, TimelineEntry
from server.services import elements as element_service
from tests.conftest import ROOT
from tests.services import free_port
from tests.support import add_rule, make_pipeline, wait_for_runs, wait_until


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_a_worker_killed_during_a_run_completes_it_once_after_the_lease(db):
    import asyncpg

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello {{deal.title}}"})
    blocker = await asyncpg.connect(db.database_url)
    transaction = blocker.transaction()
    await transaction.start()
    try:
        # Writes to the timeline wait on this lock: the worker takes the run, then hangs mid-run.
        await blocker.execute("LOCK TABLE timeline_entry IN EXCLUSIVE MODE")
        deal = await element_service.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id)
        await wait_until(lambda: RuleRun.exists(element_id=deal.id, status="running"), what="the run to start")
        db.worker.kill_hard()
    finally:
        await transaction.rollback()
        await blocker.close()
    db.worker.start()

    [run] = await wait_for_runs("deal", deal.id, 1, timeout_s=30)

    assert run.status == "succeeded"
    assert run.attempts == 2
    entries = await TimelineEntry.filter(element_id=deal.id, kind="comment")
    assert [e.text for e in entries] == ["Hello ACME"]


def _serve(db_url: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PIPEWRIGHT_DATABASE_URL": db_url, "PIPEWRIGHT_POLL_MS": "100"}
    env.pop("PIPEWRIGHT_BROKER_URL", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )


async def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


async def _wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not come up")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


async def test_a_delayed_rule_fires_once_after_the_server_restarts(tmp_path):
    """Stop the server before a run is due, start it after: the run fires, once."""
    db_url = f"sqlite://{tmp_path / 'restart.db'}"
    port = free_port()
    log = tmp_path / "serve.log"
    server = _serve(db_url, port, log)
    try:
        await _wait_ready(port, server)
        data = await _graphql(port, "{ pipelines(entityType: \"deal\") { id stages { id code } } }")
        assert data["pipelines"] == []
    finally:
        _stop(server)
    # Set up the stage with the server down (the test owns the SQLite file meanwhile).
    from server import database

    await database.connect(db_url)
    try:
        _, stages = await make_pipeline()
        await add_rule(stages["offer"], "add_comment", {"text": "delayed hello"},
                       timing={"kind": "after", "amount": 3, "unit": "seconds"})
        stage_id = stages["offer"].id
    finally:
        await database.disconnect()

    server = _serve(db_url, port, log)
    try:
        await _wait_ready(port, server)
        created = await _graphql(
            port,
            "mutation($stage: ID!) { createDeal(input: {title: \"Restart\", stageId: $stage}) { ... on Deal { id } } }",
            {"stage": str(stage_id)},
        )
        deal_id = created["createDeal"]["id"]
    finally:
        _stop(server)  # well before the 3 s are up

    await asyncio.sleep(4)  # the run is now overdue, with no server running
    server = _serve(db_url, port, log)
    try:
        await _wait_ready(port, server)

        async def fired() -> list | None:
            data = await _graphql(port, "query($id: ID!) { ruleRuns(elementType: \"deal\", elementId: $id) { status } "
                                        "timeline(elementType: \"deal\", elementId: $id) { kind text } }", {"id": deal_id})
            return data if data["ruleRuns"][0]["status"] == "succeeded" else None

        data = await wait_until(fired, timeout_s=20, what="the delayed run after the restart")
        await asyncio.sleep(1)  # and it does not fire a second time
        data = await _graphql(port, "query($id: ID!) { timeline(elementType: \"deal\", elementId: $id) { kind text } }",
                              {"id": deal_id})
        assert [e["text"] for e in data["timeline"] if e["kind"] == "comment"] == ["delayed hello"]
    finally:
        _stop(server)


async def test_embedded_start_up_resends_orphaned_runs_at_once(db):
    from datetime import timedelta

    from server import clock
    from server.workers import scheduler

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "picked up"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "orphan"}, stage_id=stages["offer"].id)
    # As a process killed mid-run leaves it, with a lease far from expiring.
    await RuleRun.filter(element_id=deal.id).update(status="running", attempts=1,
                                                    lease_until=clock.utcnow() + timedelta(minutes=10))
    assert await scheduler.resend_orphans() == 1  # what EmbeddedWorker.start does first

    [run] = await wait_for_runs("deal", deal.id, 1, timeout_s=5)
    assert run.status == "succeeded" and run.attempts == 2
    assert [e.text for e in await TimelineEntry.filter(element_id=deal.id, kind="comment")] == ["picked up"]
