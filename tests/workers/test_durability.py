"""Nothing is lost: a killed worker or a stopped server delays work, never drops or doubles it."""

import shutil
from datetime import datetime

import pytest

from server import clock, database
from server.actor import SYSTEM
from server.models import RuleRun, TimelineEntry
from server.services import elements as element_service
from tests.support.serve import cli_token, graphql, serve, stop, wait_ready
from tests.support.servers import free_port
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
        deal = await element_service.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id, actor=SYSTEM)
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


async def test_a_delayed_rule_fires_once_after_the_server_restarts(tmp_path, sqlite_template):
    """Stop the server before a run is due, start it after: the run fires, once."""
    shutil.copyfile(sqlite_template, tmp_path / "restart.db")
    db_url = f"sqlite://{tmp_path / 'restart.db'}"
    port = free_port()
    log = tmp_path / "serve.log"
    token = cli_token(db_url)
    server = serve(db_url, port, log)
    try:
        await wait_ready(port, server)
        data = await graphql(port, "{ pipelines(entityType: \"deal\") { id stages { id code } } }", token=token)
        assert data["pipelines"] == []
    finally:
        stop(server)
    # Set up the stage with the server down (the test owns the SQLite file meanwhile).
    await database.connect(db_url)
    try:
        _, stages = await make_pipeline()
        await add_rule(stages["offer"], "add_comment", {"text": "delayed hello"},
                       timing={"kind": "after", "amount": 3, "unit": "seconds"})
        stage_id = stages["offer"].id
    finally:
        await database.disconnect()

    server = serve(db_url, port, log)
    try:
        await wait_ready(port, server)
        created = await graphql(
            port,
            "mutation($stage: ID!) { createDeal(input: {title: \"Restart\", stageId: $stage}) "
            "{ ... on Deal { id ruleRuns { dueAt } } } }",
            {"stage": str(stage_id)}, token=token,
        )
        deal_id = created["createDeal"]["id"]
        due_at = datetime.fromisoformat(created["createDeal"]["ruleRuns"][0]["dueAt"])
    finally:
        stop(server)  # well before the 3 s are up

    async def overdue() -> bool:
        return clock.utcnow() > due_at

    await wait_until(overdue, what="the run to be overdue, with no server running")
    server = serve(db_url, port, log)
    try:
        await wait_ready(port, server)

        async def fired() -> list | None:
            data = await graphql(port, "query($id: ID!) { ruleRuns(elementType: \"deal\", elementId: $id) { nodes { status } } "
                                        "timeline(elementType: \"deal\", elementId: $id) { kind text } }", {"id": deal_id},
                                 token=token)
            return data if data["ruleRuns"]["nodes"][0]["status"] == "succeeded" else None

        await wait_until(fired, timeout_s=20, what="the delayed run after the restart")
    finally:
        stop(server)
    # What the server left behind: one attempt (a second delivery would have taken another) and one comment.
    await database.connect(db_url)
    try:
        [run] = await RuleRun.all()
        assert (run.status, run.attempts) == ("succeeded", 1)
        assert [e.text for e in await TimelineEntry.filter(kind="comment")] == ["delayed hello"]
    finally:
        await database.disconnect()


async def test_embedded_start_up_resends_orphaned_runs_at_once(db):
    from datetime import timedelta

    from server.workers import scheduler

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "picked up"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "orphan"}, stage_id=stages["offer"].id, actor=SYSTEM)
    # As a process killed mid-run leaves it, with a lease far from expiring.
    await RuleRun.filter(element_id=deal.id).update(status="running", attempts=1,
                                                    lease_until=clock.utcnow() + timedelta(minutes=10))
    assert await scheduler.resend_orphans() == 1  # what EmbeddedWorker.start does first

    [run] = await wait_for_runs("deal", deal.id, 1, timeout_s=5)
    assert run.status == "succeeded" and run.attempts == 2
    assert [e.text for e in await TimelineEntry.filter(element_id=deal.id, kind="comment")] == ["picked up"]
