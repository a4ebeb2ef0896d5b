"""Leases: a slow but alive attempt keeps its run, a lost one is taken over (once, on the database's clock), and
a backlog of any size is recovered whole."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from server import clock, config
from server.actor import SYSTEM
from server.models import RuleRun, TimelineEntry
from server.rules import engine, queue
from server.services import elements as element_service
from server.workers import scheduler
from server.workers.broker import broker
from tests.support import add_rule, make_pipeline, wait_for_runs, wait_until
from tests.support.servers import ROOT
from tests.workers import slow_actions


async def comments(deal_id: int) -> list[str]:
    return [e.text for e in await TimelineEntry.filter(element_id=deal_id, kind="comment").order_by("id")]


@contextmanager
def worker_with_slow_actions(env: dict[str, str], log: Path, **extra: str) -> Iterator[None]:
    """A worker host of its own that also knows the test-only actions: one dramatiq process (every run in it
    shares one event loop) and a scheduler, as `pipewright worker --processes 1` runs them."""
    # Each run holds a connection for its transaction and its heartbeat needs another: the default pool (two per
    # worker thread plus two, PIPEWRIGHT_DB_POOL_MAX_CONNECTIONS) is what keeps the heartbeats alive here.
    env = {**env, **extra}
    with open(log, "ab") as out:
        processes = [
            subprocess.Popen([sys.executable, "-m", "dramatiq", "server.workers.actors", "tests.workers.slow_actions",
                              "--processes", "1", "--threads", "8"],
                             env={**env, "dramatiq_worker_timeout": "100"}, cwd=ROOT, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True),
            subprocess.Popen([sys.executable, "-m", "server.cli", "scheduler"], env=env, cwd=ROOT, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True),
        ]
    try:
        yield
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def slow_comment() -> Iterator[None]:
    with slow_actions.installed():
        yield


SLOW_S = 45  # the figure, with the worker's 3 s lease (PIPEWRIGHT_LEASE_S in tests/conftest.py)


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_a_45_s_action_with_a_3_s_lease_runs_once_and_the_runs_beside_it_are_not_re_run(
        db, worker_paused, slow_comment, tmp_path):
    assert db.worker.env["PIPEWRIGHT_LEASE_S"] == "3"
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "slow_comment", {"text": "slow {{deal.title}}", "seconds": SLOW_S})
    # Its neighbours in the same process: each outlives the lease too, then a quick rule after it.
    await add_rule(stages["invoice"], "slow_comment", {"text": "neighbour {{deal.title}}", "seconds": 5})
    await add_rule(stages["invoice"], "add_comment", {"text": "then {{deal.title}}"}, lane="after_previous")
    with worker_with_slow_actions(db.worker.env, tmp_path / "worker.log"):
        slow = await element_service.create_element("deal", {"title": "S"}, stage_id=stages["offer"].id, actor=SYSTEM)
        await wait_until(lambda: RuleRun.exists(element_id=slow.id, status="running"), timeout_s=30,
                         what="the slow run to start")
        neighbours = [await element_service.create_element("deal", {"title": f"N{i}"}, stage_id=stages["invoice"].id,
                                                           actor=SYSTEM) for i in range(6)]
        for deal in neighbours:
            runs = await wait_for_runs("deal", deal.id, 2, timeout_s=60)
            assert [(r.status, r.attempts) for r in runs] == [("succeeded", 1), ("succeeded", 1)]
        [run] = await wait_for_runs("deal", slow.id, 1, timeout_s=SLOW_S + 30)

    assert (run.status, run.attempts) == ("succeeded", 1)
    assert run.finished_at - run.started_at >= timedelta(seconds=SLOW_S)  # it did work the whole time
    assert await comments(slow.id) == ["slow S"]
    for deal in neighbours:
        assert await comments(deal.id) == [f"neighbour {deal.title}", f"then {deal.title}"]


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_an_attempt_taken_over_stops_at_once_and_leaves_no_effect(db, worker_paused, slow_comment,
                                                                          monkeypatch):
    """PostgreSQL: the heartbeat is its own statement, so it sees the takeover while the action still works."""
    monkeypatch.setenv("PIPEWRIGHT_LEASE_S", "1")
    config.reload()
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "slow_comment", {"text": "late", "seconds": 60},
                   timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "T"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)
    await RuleRun.filter(id=run.id).update(status="queued", lease_until=clock.utcnow() + timedelta(minutes=5))
    attempt = asyncio.create_task(engine.execute(run.id))
    await wait_until(lambda: RuleRun.exists(id=run.id, status="running"), what="the attempt to start")
    # Another worker took the run over (its lease had expired while this host was frozen).
    await RuleRun.filter(id=run.id).update(attempts=2)

    assert await asyncio.wait_for(attempt, timeout=10) is None  # well before its 60 s of work
    await run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 2)  # the other attempt's, untouched
    assert await comments(deal.id) == []


@pytest.mark.production_backend
@pytest.mark.production_only
async def test_a_host_whose_clock_is_5_minutes_ahead_takes_over_nothing_early_and_runs_nothing_early(
        db, worker_paused, tmp_path):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "on time"}, timing={"kind": "after", "amount": 6, "unit": "seconds"})
    await add_rule(stages["invoice"], "add_comment", {"text": "taken over"},
                   timing={"kind": "after", "amount": 1, "unit": "days"})
    due = await element_service.create_element("deal", {"title": "due"}, stage_id=stages["offer"].id, actor=SYSTEM)
    held = await element_service.create_element("deal", {"title": "held"}, stage_id=stages["invoice"].id, actor=SYSTEM)
    lost = await element_service.create_element("deal", {"title": "lost"}, stage_id=stages["invoice"].id, actor=SYSTEM)
    [due_run] = await RuleRun.filter(element_id=due.id)
    now = clock.utcnow()  # this test's host and the database share one clock
    # `held` as a live worker holds it (12 s of lease left); `lost` as a dead one left it, lease just expired.
    held_until = now + timedelta(seconds=12)
    await RuleRun.filter(element_id=held.id).update(status="running", attempts=1, lease_until=held_until)
    await RuleRun.filter(element_id=lost.id).update(status="running", attempts=1, lease_until=now - timedelta(seconds=1))

    with worker_with_slow_actions(db.worker.env, tmp_path / "skewed.log", PIPEWRIGHT_TEST_CLOCK_SKEW_S="300"):
        [run] = await wait_for_runs("deal", lost.id, 1, timeout_s=30)  # the skewed host works, and sweeps
        assert (run.status, run.attempts) == ("succeeded", 2)

        async def watched() -> bool:
            held_run, due_run_now = await RuleRun.get(element_id=held.id), await RuleRun.get(id=due_run.id)
            now = clock.utcnow()
            if now < held_until - timedelta(seconds=0.5):
                assert (held_run.status, held_run.attempts) == ("running", 1), "taken over before its lease expired"
            if now < due_run.due_at - timedelta(seconds=0.5):
                assert due_run_now.status == "scheduled", "run before it was due"
            return due_run_now.status == "succeeded" and held_run.status == "succeeded"

        await wait_until(watched, timeout_s=40, what="both runs, each in its own time")

    [run] = await RuleRun.filter(element_id=held.id)
    assert run.attempts == 2 and run.started_at >= held_until
    [run] = await RuleRun.filter(id=due_run.id)
    assert run.started_at >= due_run.due_at
    assert await comments(due.id) == ["on time"] and await comments(held.id) == ["taken over"]


async def _orphans(count: int) -> list[int]:
    """`count` runs a killed process left running, with leases far from expiring."""
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "picked up"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "orphans"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [first] = await RuleRun.filter(element_id=deal.id)
    fields = {name: getattr(first, name) for name in (
        "stage_run_id", "element_type", "element_id", "rule_id", "rule_key", "action_type", "title", "spec")}
    await RuleRun.bulk_create([RuleRun(**fields, position=i) for i in range(1, count)], batch_size=500)
    await RuleRun.filter(element_id=deal.id).update(status="running", attempts=1,
                                                    lease_until=clock.utcnow() + timedelta(minutes=10))
    return [r.id for r in await RuleRun.filter(element_id=deal.id)]


async def test_start_up_resends_all_1200_orphaned_runs(db, worker_paused):
    ids = await _orphans(1200)

    assert await scheduler.resend_orphans() == 1200  # the old cap of 500 left 700 to wait out their lease
    # Each is queued again, or already taken by a worker for its second attempt: none waits out its lease.
    assert await RuleRun.filter(id__in=ids, status="running", attempts=1).count() == 0
    await RuleRun.filter(id__in=ids).update(status="cancelled")  # this test is about the sending, not the runs
    broker.flush_all()


async def test_a_backlog_is_not_sent_again_while_the_workers_are_still_draining_it(db, worker_paused, clock_control):
    ids = await _orphans(1200)
    assert len(await queue.recover_expired(orphaned=True)) == 1200

    clock_control.advance(timedelta(seconds=config.settings().queued_lease_s + 1))
    early = await queue.recover_expired()  # a fixed 30 s lease sent all 1,200 again here
    clock_control.advance(timedelta(minutes=10))
    late = await queue.recover_expired()  # still not started: those messages were lost, send them again

    assert len(early) < 500
    assert sorted(early + late) == sorted(ids)
    await RuleRun.filter(id__in=ids).update(status="cancelled")


async def test_a_run_taken_over_too_often_says_so(db, worker_paused):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "x"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "poison"}, stage_id=stages["offer"].id, actor=SYSTEM)
    attempts = config.settings().max_attempts
    await RuleRun.filter(element_id=deal.id).update(status="running", attempts=attempts,
                                                    lease_until=clock.utcnow() - timedelta(seconds=1))

    assert await queue.recover_expired() == []
    [run] = await RuleRun.filter(element_id=deal.id)
    assert run.status == "failed"
    assert run.error == (f"its worker was lost {attempts} times (each attempt stopped renewing its "
                         f"{config.settings().lease_s} s lease (PIPEWRIGHT_LEASE_S): the worker was killed, frozen or "
                         f"cut off from the database); gave up after {attempts} attempts")
