"""Faults injected on the production setup (PostgreSQL, Redis, separate worker processes), as an operator would.

A worker host frozen with SIGSTOP (a VM or GC pause; a network cut looks the same to PostgreSQL) in the middle
of a transaction that has written events: the other host, the API and /health go on, the frozen host's runs
are taken over after their lease, and when it comes back nothing is lost or doubled. Each test prints its row
of the fault table.
"""

import asyncio
import subprocess
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.actor import SYSTEM
from server.models import RuleRun, TimelineEntry
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.support.serve import serve, stop, wait_ready
from tests.support.servers import free_port

pytestmark = [pytest.mark.production_backend, pytest.mark.production_only, pytest.mark.timeout(420)]

DEALS = 300
MOVERS = 4
FREEZE_BUDGET_S = 90.0  # short freezes until one lands inside a transaction that wrote events
API_WAIT_S = 20.0  # how long the test waits for an answer before calling the API stalled
LIVENESS_S = 5.0  # "within a few seconds": a liveness bound, not a speed claim
TAKE_OVER_WAIT_S = 30.0

# A backend whose client stopped inside a transaction after inserting events: it holds the events' row
# lock and sits "idle in transaction" (a client that is merely between two statements leaves that state
# within milliseconds).
FROZEN_EVENT_WRITER = """
SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
WHERE l.relation = 'event'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted
  AND a.state = 'idle in transaction' AND a.state_change < now() - interval '250 milliseconds'
"""
# Runs started a while ago that no transaction holds: the frozen host's, mid-action (the other host finishes
# its own in milliseconds). A run whose row the frozen transaction holds cannot be taken over before that
# transaction ends, so the test freezes the host when it also has one of these.
FROZEN_RUNS = """
SELECT id FROM rule_run WHERE status = 'running' AND started_at < now() - interval '250 milliseconds'
FOR UPDATE SKIP LOCKED
"""


def fault_row(test: str, runs: int, lost: int, duplicated: int, stall_s: float, take_over_s: float | None) -> str:
    take_over = f"{take_over_s:.1f} s" if take_over_s is not None else "none seen"
    return (f"| {test} | {runs} | {lost} | {duplicated} | {stall_s:.2f} s | {take_over} |")


async def freeze_inside_an_event_transaction(host, monitor) -> int:
    """SIGSTOP `host` again and again until it is frozen holding an uncommitted event (what held the global
    event lock before) and a run it can lose. Returns how many tries it took; the host is left frozen."""
    deadline = time.monotonic() + FREEZE_BUDGET_S
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        host.pause()
        await asyncio.sleep(0.3)
        if await monitor.fetchval(FROZEN_EVENT_WRITER):
            async with monitor.transaction():
                if await monitor.fetch(FROZEN_RUNS):
                    return attempt
        host.resume()
        await asyncio.sleep(0.02 * (attempt % 5))
    raise AssertionError(f"{attempt} freezes in {FREEZE_BUDGET_S:.0f} s never caught the host inside a transaction that wrote events "
                         "with a run to take over")


def stop_or_kill(server: subprocess.Popen) -> None:
    """A web process stuck on a lock may not finish its shutdown: kill it then."""
    try:
        stop(server)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


async def timed(request) -> tuple[float, httpx.Response | None]:
    """(seconds, response): None when no answer came within API_WAIT_S."""
    started = time.monotonic()
    try:
        response = await asyncio.wait_for(request, API_WAIT_S)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        return time.monotonic() - started, None
    return time.monotonic() - started, response


async def test_a_frozen_worker_host_stops_neither_the_other_host_nor_the_api_and_nothing_is_lost_or_doubled(
        db, tmp_path: Path):
    import asyncpg

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello {{deal.title}}"})
    _, token = await make_token("admin")
    deals = [await element_service.create_element("deal", {"title": f"Deal {i}"}, stage_id=stages["new"].id,
                                                  actor=SYSTEM) for i in range(DEALS)]
    probe = await element_service.create_element("deal", {"title": "Probe"}, stage_id=stages["new"].id, actor=SYSTEM)
    host_a = db.worker
    host_b = replace(host_a, process=None, log_path=tmp_path / "host-b.log")
    host_b.start()
    port = free_port()
    server = serve(db.database_url, port, tmp_path / "serve.log", broker_url=db.redis.url)
    monitor = await asyncpg.connect(db.database_url)

    async def move_all() -> None:
        # Several movers at once, as several users: the hosts have runs in flight side by side (one mover's runs
        # alone are done before the next move, and a host frozen then has no other run to lose).
        async def move(chunk: list) -> None:
            for deal in chunk:
                await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)
        await asyncio.gather(*(move(deals[start::MOVERS]) for start in range(MOVERS)))

    moving: asyncio.Task[None] | None = None
    frozen = False
    try:
        await wait_ready(port, server)
        moving = asyncio.get_running_loop().create_task(move_all())

        async def under_way() -> bool:
            return await RuleRun.filter(status="succeeded").count() >= 20

        await wait_until(under_way, timeout_s=60, what="the first runs done")
        tries = await freeze_inside_an_event_transaction(host_a, monitor)
        frozen, frozen_at = True, time.monotonic()
        done_at_freeze = await RuleRun.filter(status="succeeded").count()
        assert done_at_freeze < DEALS, "every run was done before the freeze: the test did not freeze a host under load"

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=API_WAIT_S,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            move_s, moved = await timed(client.post("/graphql", json={
                "query": "mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { __typename } }",
                "variables": {"id": str(probe.id), "s": str(stages["offer"].id)}}))
            health_s, health = await timed(client.get("/health"))
        stall_s = max(move_s, health_s)
        assert moved is not None and moved.json()["data"]["moveDeal"]["__typename"] == "Deal", \
            f"moveDeal got no answer within {API_WAIT_S:.0f} s while a worker host was frozen"
        assert health is not None and health.status_code == 200, "/health was not green while a worker host was frozen"
        assert stall_s < LIVENESS_S, f"the API took {stall_s:.1f} s to answer while a worker host was frozen"

        # A run the frozen host had started gets a new attempt once its lease is over. That attempt may wait on
        # a row the frozen transaction holds (its deal): it goes on when the host comes back and loses the run.
        async def taken_over() -> bool:
            return await RuleRun.filter(attempts__gte=2).exists()

        await wait_until(taken_over, timeout_s=TAKE_OVER_WAIT_S, what="a run of the frozen host taken over")
        take_over_s = time.monotonic() - frozen_at
        done_while_frozen = await RuleRun.filter(status="succeeded").count() - done_at_freeze
        assert done_while_frozen > 0, "the other host did no run while one host was frozen"
        host_a.resume()
        frozen = False
    except BaseException:
        if moving is not None:
            moving.cancel()
        host_b.stop()
        stop_or_kill(server)
        raise
    finally:
        if frozen:
            host_a.resume()
        await monitor.close()
    try:
        assert moving is not None
        await moving

        async def all_done() -> bool:
            runs = await RuleRun.all().values_list("status", flat=True)
            return len(runs) == DEALS + 1 and set(runs) == {"succeeded"}

        await wait_until(all_done, timeout_s=120, what=f"all {DEALS + 1} runs succeeded after the host came back")
    finally:
        stop_or_kill(server)
        host_b.stop()
    ids = [d.id for d in deals] + [probe.id]
    runs = Counter(await RuleRun.filter(element_id__in=ids).values_list("element_id", flat=True))
    comments = Counter(await TimelineEntry.filter(element_id__in=ids, kind="comment").values_list("element_id", flat=True))
    lost = sum(1 for i in ids if comments[i] == 0)
    duplicated = sum(n - 1 for n in comments.values() if n > 1) + sum(n - 1 for n in runs.values() if n > 1)
    print("\n| test | runs | lost | duplicated | stall seen by the API | time to take over |")
    print(fault_row(f"one of two worker hosts frozen (SIGSTOP, caught inside an event transaction after {tries} tries)",
                    len(ids), lost, duplicated, stall_s, take_over_s))
    print(f"runs done by the other host while frozen: {done_while_frozen}; moveDeal {move_s:.2f} s, /health {health_s:.2f} s")
    assert (lost, duplicated) == (0, 0)
