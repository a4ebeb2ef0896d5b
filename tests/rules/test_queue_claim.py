"""The claim of due runs: earliest first across scheduled and waiting runs, and with a due backlog it reads the
(status, due_at, id) index in order, one status at a time, instead of sorting every due run (both planners)."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from tortoise.connection import get_connection

from server import clock
from server.actor import SYSTEM
from server.kinds import RunStatus
from server.models import RuleRun
from server.rules import queue
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline

pytestmark = pytest.mark.production_backend

BACKLOG = 3000  # due runs, half of each status: far more than the claim takes (200), so sorting them all costs more


async def scheduled_runs(n: int) -> list[RuleRun]:
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "later"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    for i in range(n):
        await element_service.create_element("deal", {"title": f"Due {i}"}, stage_id=stages["offer"].id, actor=SYSTEM)
    return list(await RuleRun.filter(status=RunStatus.scheduled).order_by("id"))


async def test_the_claim_hands_over_the_earliest_due_runs_whether_scheduled_or_waiting(
        db: Any, worker_paused: None) -> None:
    runs = await scheduled_runs(5)
    now = clock.utcnow()
    # due 5, 4, 3, 2, 1 minutes ago; the second-earliest is a blocked run whose wait timed out
    for minutes, run in zip((1, 3, 5, 4, 2), runs):
        await RuleRun.filter(id=run.id).update(due_at=now - timedelta(minutes=minutes))
    await RuleRun.filter(id=runs[3].id).update(status=RunStatus.waiting)

    first = await queue.claim_due(limit=3)
    rest = await queue.claim_due(limit=3)
    claimed = {r.status for r in await RuleRun.filter(id__in=first + rest)}

    assert sorted(first) == sorted([runs[2].id, runs[3].id, runs[1].id])  # due 5, 4 and 3 minutes ago
    assert sorted(rest) == sorted([runs[4].id, runs[0].id])
    assert claimed == {RunStatus.queued}


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


async def claim_plans(kind: str) -> dict[str, list[str]]:
    """The plans of the claim's SELECTs as sent (`queue.due_runs`, FOR UPDATE SKIP LOCKED on PostgreSQL). On
    PostgreSQL the prepared statement's generic plan too, which is what a claim runs after its fifth time."""
    conn = get_connection("default")
    plans: dict[str, list[str]] = {}
    for status in queue.CLAIMABLE:
        query = queue.due_runs(status, clock.utcnow(), 200).only("id", "due_at").select_for_update(skip_locked=True)
        if kind == "sqlite":
            _, rows = await conn.execute_query(f"EXPLAIN QUERY PLAN {query.sql(params_inline=True)}")
            # (id, parent, _, detail): the steps of the statement itself at parent 0, the subquery's under it
            plans[status.value] = [("" if row[1] == 0 else "  ") + str(row[3]) for row in rows]
            continue
        query._choose_db_if_not_chosen()
        query._make_query()
        sql, params = query.query.get_parameterized_sql()
        _, rows = await conn.execute_query(f"EXPLAIN {query.sql(params_inline=True)}")
        plans[status.value] = [str(row[0]) for row in rows]
        async with conn.acquire_connection() as raw:  # one session for PREPARE
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            await raw.execute(f"PREPARE due_claim AS {sql}")
            try:
                generic = await raw.fetch(f"EXPLAIN EXECUTE due_claim({', '.join(map(_literal, params))})")
            finally:
                await raw.execute("DEALLOCATE due_claim")
                await raw.execute("RESET plan_cache_mode")
        plans[f"{status.value}, generic"] = [str(row[0]) for row in generic]
    return plans


def sorts_runs(kind: str, plan: list[str]) -> bool:
    """Whether the plan sorts rule runs (the paused rules' subquery sorts a few rules, which is no matter)."""
    if kind == "sqlite":
        return "USE TEMP B-TREE FOR ORDER BY" in plan  # a step of the statement itself, not of its subquery
    return any("Sort Key: rule_run." in step for step in plan)


async def test_with_a_due_backlog_the_claim_reads_due_runs_in_order_and_sorts_none(
        db: Any, worker_paused: None) -> None:
    [template] = await scheduled_runs(1)
    now = clock.utcnow()
    await RuleRun.bulk_create([
        RuleRun(stage_run_id=template.stage_run_id, element_type="deal", element_id=template.element_id,
                rule_id=template.rule_id, rule_key=template.rule_key, action_type=template.action_type,
                title=template.title, position=template.position, lane=template.lane, spec=template.spec,
                status=RunStatus.scheduled if i % 2 else RunStatus.waiting,
                due_at=now - timedelta(seconds=i), revision=template.revision)
        for i in range(BACKLOG)], batch_size=500)
    if db.kind == "postgres":
        await get_connection("default").execute_script("ANALYZE rule_run")

    plans = await claim_plans(db.kind)

    assert set(plans) >= {"scheduled", "waiting"}
    assert {status: plan for status, plan in plans.items() if sorts_runs(db.kind, plan)} == {}
    reads_index = "USING INDEX" if db.kind == "sqlite" else "Index Cond: "
    assert all(any(reads_index in step and "due_at" in step for step in plan) for plan in plans.values()), plans
