"""/metrics and /health against real worker processes (PostgreSQL, Redis, `pipewright worker`), as an operator
sees them: the overdue count rises while the workers are stopped (SIGSTOP, scheduler included), /health names
them, and both recover once the workers go on.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import config, operations_routes
from server.actor import SYSTEM
from server.app import create_app
from server.models import RuleRun, WorkerBeat
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_token, wait_until
from tests.test_metrics import sample

pytestmark = [pytest.mark.production_backend, pytest.mark.production_only, pytest.mark.timeout(180)]

DEALS = 20
OVERDUE_AFTER_S = 1  # this process reads the figures: its thresholds are the ones that count
STALL_AFTER_S = 8  # above the workers' PIPEWRIGHT_HEARTBEAT_S (5 s by default), so beating workers never look stalled


@pytest.fixture
async def scraper(db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in (("OVERDUE_AFTER_S", OVERDUE_AFTER_S), ("STALL_AFTER_S", STALL_AFTER_S),
                        ("METRICS_CACHE_S", 0)):
        monkeypatch.setenv(f"PIPEWRIGHT_{name}", str(value))
    config.reload()
    monkeypatch.setattr(operations_routes, "cached", operations_routes._Cached())
    _, token = await make_token("admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    monkeypatch.undo()
    config.reload()


async def test_the_overdue_count_rises_while_the_worker_processes_are_stopped_and_falls_to_zero_after(
        db: Any, scraper: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello {{deal.title}}"})

    async def beating() -> bool:
        return await WorkerBeat.filter(role="worker").count() >= 2 and await WorkerBeat.exists(role="scheduler")

    await wait_until(beating, timeout_s=30, what="both worker processes and the scheduler beating")
    assert (await scraper.get("/health")).status_code == 200
    db.worker.pause()  # SIGSTOP: the scheduler and both dramatiq processes
    try:
        for i in range(DEALS):
            await element_service.create_element("deal", {"title": f"Deal {i}"}, stage_id=stages["offer"].id,
                                                 actor=SYSTEM)

        async def overdue() -> float:
            return sample((await scraper.get("/metrics")).text, "pipewright_rule_runs_overdue")

        assert await wait_until(lambda: _is(overdue, DEALS), timeout_s=20, what=f"{DEALS} overdue runs")

        async def unhealthy() -> httpx.Response | None:  # both roles: the scheduler's last beat may be the older
            health = await scraper.get("/health")
            return health if health.status_code == 503 and {"workers", "scheduler"} <= health.json().keys() else None

        stalled = await wait_until(unhealthy, timeout_s=STALL_AFTER_S + 15, what="/health failing")
        stopped = (await scraper.get("/metrics")).text
    finally:
        db.worker.resume()

    assert "stalled" in stalled.json()["workers"] and "stalled" in stalled.json()["scheduler"]
    assert sample(stopped, "pipewright_rule_runs_oldest_pending_seconds") > OVERDUE_AFTER_S
    assert sample(stopped, "pipewright_rule_runs_due") == DEALS

    async def all_done() -> bool:
        return await RuleRun.filter(status="succeeded").count() == DEALS

    await wait_until(all_done, timeout_s=60, what="every run done after the workers went on")
    after = (await scraper.get("/metrics")).text
    assert sample(after, "pipewright_rule_runs_overdue") == 0
    assert sample(after, "pipewright_rule_runs_due") == 0
    assert sample(after, "pipewright_rule_runs_finished_last_hour", status="succeeded") == DEALS
    assert sample(after, "pipewright_rule_runs_per_second") > 0
    healthy = await scraper.get("/health")
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok", "database": "ok"})
    workers = {s.labels["process"] for f in text_string_to_metric_families(after) for s in f.samples
               if s.name == "pipewright_heartbeat_age_seconds" and s.labels["role"] == "worker"}
    assert len(workers) >= 2  # one beat per dramatiq process


async def _is(read: Any, expected: float) -> bool:
    return bool(await read() == expected)
