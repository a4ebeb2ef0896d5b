"""/metrics and /health as an operator's scraper and load balancer see them (embedded worker, SQLite).

The figures come from the database (any process answers the same), are cached for a few seconds per process,
and are guarded by a bearer token. Their queries read indexes: checked with EXPLAIN QUERY PLAN.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tortoise.connection import get_connection

from server import config, operations_routes
from server.actor import SYSTEM
from server.app import create_app
from server.models import WorkerBeat
from server.services import elements as element_service
from server.services import operations
from tests.support import ClockControl, add_rule, make_pipeline, make_token, wait_for_runs

pytestmark = pytest.mark.production_backend

OVERDUE_AFTER_S = 60
STALL_AFTER_S = 30


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition `text` (the metric must be there)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


@pytest.fixture
async def scraper(db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with an admin's token, thresholds known to the test, and no caching of figures."""
    for name, value in (("OVERDUE_AFTER_S", OVERDUE_AFTER_S), ("STALL_AFTER_S", STALL_AFTER_S),
                        ("METRICS_CACHE_S", 0), ("METRICS_TOKEN", "scrape-secret-1")):
        monkeypatch.setenv(f"PIPEWRIGHT_{name}", str(value))
    config.reload()
    monkeypatch.setattr(operations_routes, "cached", operations_routes._Cached())
    _, token = await make_token("admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    monkeypatch.undo()
    config.reload()


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_answer_only_admins_tokens_and_the_scrape_token(scraper: httpx.AsyncClient) -> None:
    _, employee = await make_token("employee")
    anonymous = await scraper.get("/metrics", headers={"Authorization": ""})
    wrong = await scraper.get("/metrics", headers={"Authorization": "Bearer pw_not-a-token"})
    not_admin = await scraper.get("/metrics", headers={"Authorization": f"Bearer {employee}"})
    by_scrape_token = await scraper.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})

    assert (anonymous.status_code, wrong.status_code, not_admin.status_code) == (401, 401, 403)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "pipewright_rule_runs" not in anonymous.text + wrong.text + not_admin.text
    assert by_scrape_token.status_code == 200
    assert sample(by_scrape_token.text, "pipewright_rule_runs_overdue") == 0


@pytest.mark.sqlite_only  # the embedded worker; tests/workers/test_metrics_workers.py stops real worker processes
async def test_overdue_runs_rise_while_the_embedded_worker_is_stopped_and_fall_back_after_it_restarts(
        scraper: httpx.AsyncClient, embedded_worker: Any, clock_control: ClockControl) -> None:
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello {{deal.title}}"})
    await embedded_worker.detach()  # the in-process worker and scheduler stop: nothing claims, nothing beats
    try:
        deal = await element_service.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id,
                                                    actor=SYSTEM)
        just_due = await scrape(scraper)
        clock_control.advance(timedelta(seconds=OVERDUE_AFTER_S + STALL_AFTER_S + 5))
        stopped = await scrape(scraper)
        health = await scraper.get("/health")
    finally:
        await embedded_worker.attach()

    assert (sample(just_due, "pipewright_rule_runs_due"), sample(just_due, "pipewright_rule_runs_overdue")) == (1, 0)
    assert sample(stopped, "pipewright_rule_runs_overdue") == 1
    assert sample(stopped, "pipewright_rule_runs_oldest_pending_seconds") > OVERDUE_AFTER_S
    assert sample(stopped, "pipewright_scheduler_lag_seconds") > OVERDUE_AFTER_S
    assert sample(stopped, "pipewright_rule_runs", status="scheduled") == 1
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert "stalled" in health.json()["scheduler"] and "stalled" in health.json()["workers"]

    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "succeeded"
    restarted = await scrape(scraper)
    assert sample(restarted, "pipewright_rule_runs_overdue") == 0
    assert sample(restarted, "pipewright_rule_runs_due") == 0
    assert sample(restarted, "pipewright_rule_runs_finished_last_hour", status="succeeded") == 1
    assert sample(restarted, "pipewright_rule_runs_per_second") == pytest.approx(1 / operations.RATE_WINDOW_S)
    healthy = await scraper.get("/health")
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok", "database": "ok"})
    beats = await WorkerBeat.all().values_list("role", flat=True)
    assert {"scheduler", "worker"} <= set(beats)


async def test_a_quiet_system_with_old_heartbeats_is_healthy(scraper: httpx.AsyncClient,
                                                             clock_control: ClockControl) -> None:
    """Nothing overdue: a scheduler that has not beaten for an hour is not a reason to take the server out."""
    clock_control.advance(timedelta(hours=1))

    health = await scraper.get("/health")

    assert (health.status_code, health.json()) == (200, {"status": "ok", "database": "ok"})


async def test_failures_are_counted_per_rule(scraper: httpx.AsyncClient) -> None:
    _, stages = await make_pipeline()
    failing = await add_rule(stages["offer"], "change_company", {"fields": {"email": "accounts@example.com"}},
                             title="Send invoices to accounts")
    await add_rule(stages["offer"], "add_comment", {"text": "Hello"})
    deals = [await element_service.create_element("deal", {"title": f"Deal {i}"}, stage_id=stages["offer"].id,
                                                  actor=SYSTEM) for i in range(3)]
    for deal in deals:
        await wait_for_runs("deal", deal.id, 2)

    text = await scrape(scraper)

    assert sample(text, "pipewright_rule_failures_last_hour", rule_id=str(failing.id),
                  rule="Send invoices to accounts") == 3
    assert sample(text, "pipewright_rule_runs_finished_last_hour", status="failed") == 3
    assert sample(text, "pipewright_rule_runs_finished_last_hour", status="succeeded") == 3
    assert sample(text, "pipewright_outbox_messages", status="queued") == 0
    assert sample(text, "pipewright_document_pdfs_backlog", status="pending") == 0
    assert sample(text, "pipewright_live_subscriptions") == 0


async def test_figures_are_cached_so_a_burst_of_scrapes_costs_one_computation(
        scraper: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPEWRIGHT_METRICS_CACHE_S", "3600")
    config.reload()
    before = await scrape(scraper)
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Hello"})
    deal = await element_service.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 1)

    after = await scrape(scraper)

    assert after == before  # the same computation answered both
    monkeypatch.setattr(operations_routes, "cached", operations_routes._Cached())
    assert sample(await scrape(scraper), "pipewright_rule_runs_finished_last_hour", status="succeeded") == 1


@pytest.mark.sqlite_only  # SQLite's query plans
async def test_the_operations_queries_read_indexes_not_the_whole_rule_run_table(db: Any) -> None:
    """EXPLAIN QUERY PLAN of every statement the figures, the stuck runs and the health verdict send."""
    sent: list[str] = []
    raw = get_connection("default")._connection  # type: ignore[attr-defined]
    await raw.set_trace_callback(sent.append)
    try:
        await operations.figures(actor=SYSTEM)
        await operations.stuck_runs(actor=SYSTEM)
        await operations.health(actor=SYSTEM)
        await operations.failures_by_rule(within=timedelta(days=1), actor=SYSTEM)
    finally:
        await raw.set_trace_callback(None)
    plans = {}
    for sql in {s for s in sent if "rule_run" in s}:
        rows = await get_connection("default").execute_query_dict(f"EXPLAIN QUERY PLAN {sql}")
        plans[sql] = [row["detail"] for row in rows]
    assert len(plans) >= 8, plans
    scans = {sql: plan for sql, plan in plans.items()
             if any(step.startswith("SCAN rule_run") and "INDEX" not in step for step in plan)}
    assert scans == {}
    full_index_scans = {sql: plan for sql, plan in plans.items()
                        if any(step.startswith("SCAN rule_run USING") for step in plan)}
    assert full_index_scans == {}
    mine = [sql for sql in plans if "LIMIT 1" in sql and "ORDER BY \"due_at\"" in sql]
    sorted_first = {sql: plans[sql] for sql in mine if any("TEMP B-TREE" in step for step in plans[sql])}
    assert mine and sorted_first == {}  # the oldest due run is the first index entry, not a sort of every due run
    counts = [sql for sql in plans if sql.startswith("SELECT COUNT(*) AS n FROM (")]
    sorted_counts = {sql: plans[sql] for sql in counts if any("TEMP B-TREE" in step for step in plans[sql])}
    assert counts and sorted_counts == {}  # a capped count stops after 100,001 index entries: nothing sorted first

