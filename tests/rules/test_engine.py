"""SPEC §3 run semantics, through the services, on the configured backend (embedded or production)."""

import asyncio
import re
from datetime import timedelta

import pytest

from server import clock
from server.actor import SYSTEM
from server.models import Deal, RuleRun, Task, TimelineEntry
from server.rules import engine, queue
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until

pytestmark = pytest.mark.production_backend


async def comments(deal_id: int) -> list[str]:
    return [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal_id, kind="comment")]


async def test_promo_code_reaches_the_comment_of_the_rule_after_it(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 8, "digits": True, "upper": True}, key="promo")
    await add_rule(stages["offer"], "add_comment", {"text": "Your promo code: {{rules.promo.code}}"}, lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "Promo"}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)

    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    code = runs[0].outputs["code"]
    assert re.fullmatch(r"[0-9A-Z]{8}", code)
    assert await comments(deal.id) == [f"Your promo code: {code}"]
    assert runs[1].outputs["comment_id"]


async def test_leaving_stage_cancels_pending_runs(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "late"}, timing={"kind": "after", "amount": 2, "unit": "minutes"})
    deal = await element_service.create_element("deal", {"title": "D"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)
    assert run.status == "scheduled" and run.due_at > clock.utcnow() + timedelta(seconds=100)

    await element_service.move_element("deal", deal.id, stages["invoice"].id, actor=SYSTEM)

    await run.refresh_from_db()
    assert run.status == "cancelled"
    assert "left stage for 'Invoice'" in run.reason
    assert await comments(deal.id) == []


async def test_condition_is_evaluated_when_due_and_false_skips_with_reason(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "big"},
                   condition=[[{"field": "amount", "op": ">", "value": 5000}]])
    exact = await element_service.create_element("deal", {"title": "exact", "amount": 5000}, stage_id=stages["offer"].id, actor=SYSTEM)
    above = await element_service.create_element("deal", {"title": "above", "amount": "5000.01"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [skipped] = await wait_for_runs("deal", exact.id, 1)
    [ran] = await wait_for_runs("deal", above.id, 1)

    assert skipped.status == "skipped"
    assert "condition not met: amount is more than 5,000 (amount is 5,000)" in skipped.reason
    assert ran.status == "succeeded"
    assert await comments(exact.id) == [] and await comments(above.id) == ["big"]


async def test_change_stage_rules_bouncing_a_deal_stop_with_a_loop_status(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_stage", {"stage": stages["invoice"].id})
    await add_rule(stages["invoice"], "change_stage", {"stage": stages["offer"].id})
    deal = await element_service.create_element("deal", {"title": "bouncy"}, stage_id=stages["new"].id, actor=SYSTEM)

    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["succeeded", "stopped"]
    assert "loop" in runs[1].reason and "Offer" in runs[1].reason
    await deal.refresh_from_db()
    assert deal.stage_id == stages["invoice"].id


async def test_loop_guard_stops_a_chain_deeper_than_the_limit(db, monkeypatch):
    pipeline, stages = await make_pipeline()
    from server.models import Stage

    chain = [stages["new"]] + [await Stage.create(pipeline=pipeline, code=f"s{i}", name=f"S{i}", position=10 + i) for i in range(12)]
    for here, there in zip(chain, chain[1:], strict=False):
        await add_rule(here, "change_stage", {"stage": there.id})
    deal = await element_service.create_element("deal", {"title": "deep"}, stage_id=stages["offer"].id, actor=SYSTEM)

    await element_service.move_element("deal", deal.id, stages["new"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 11, timeout_s=30)
    assert [r.status for r in runs][:10] == ["succeeded"] * 10
    assert runs[10].status == "stopped" and "deeper than 10" in runs[10].reason


async def test_after_previous_waits_for_the_rule_above_and_parallel_lanes_do_not(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "first"}, timing={"kind": "after", "amount": 1, "unit": "hours"})
    await add_rule(stages["offer"], "add_comment", {"text": "second"}, lane="after_previous")
    await add_rule(stages["offer"], "add_comment", {"text": "other lane"})
    deal = await element_service.create_element("deal", {"title": "lanes"}, stage_id=stages["offer"].id, actor=SYSTEM)

    await wait_for_runs("deal", deal.id, 1)
    first, second, other = await RuleRun.filter(element_id=deal.id).order_by("position")
    assert (first.lane, second.lane, other.lane) == (0, 0, 1)
    assert first.status == "scheduled" and second.status == "scheduled" and second.due_at is None
    assert "waits for" in second.reason
    assert other.status == "succeeded"

    # the first rule becomes due now: the second follows it
    await RuleRun.filter(id=first.id).update(due_at=clock.utcnow())
    await wait_for_runs("deal", deal.id, 3)
    assert await comments(deal.id) == ["other lane", "first", "second"]


async def test_wait_holds_the_lane_until_customer_activity(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 3, "description": "the signed offer"})
    await add_rule(stages["offer"], "add_comment", {"text": "customer answered"}, lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "waiting"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [wait_run, _] = await wait_until(
        lambda: _runs_if(deal.id, lambda rs: rs[0].status == "waiting"), what="the wait to block"
    )
    assert wait_run.due_at > clock.utcnow() + timedelta(days=2)
    assert (await Deal.get(id=deal.id)).waiting_for_customer

    await element_service.record_customer_activity("deal", deal.id, kind="email", text="signed, see attachment", actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)
    assert runs[0].status == "succeeded" and runs[0].outputs["ended_by"] == "activity"
    assert await comments(deal.id) == ["customer answered"]
    assert not (await Deal.get(id=deal.id)).waiting_for_customer


async def test_wait_ends_by_timeout(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 1})
    deal = await element_service.create_element("deal", {"title": "silent"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_until(lambda: _runs_if(deal.id, lambda rs: rs[0].status == "waiting"), what="the wait to block")

    await RuleRun.filter(element_id=deal.id).update(due_at=clock.utcnow() - timedelta(seconds=1))

    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "succeeded" and run.outputs["ended_by"] == "timeout"


async def test_task_with_wait_until_closed_holds_the_lane(db):
    _, stages = await make_pipeline()
    ann = await make_user()
    await add_rule(stages["offer"], "task", {"title": "Call {{deal.title}}", "wait_until_closed": True, "responsible": ann.id})
    await add_rule(stages["offer"], "add_comment", {"text": "task done"}, lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "ACME"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_until(lambda: _runs_if(deal.id, lambda rs: rs[0].status == "waiting"), what="the task to block")
    task = await Task.get(element_id=deal.id)
    assert task.title == "Call ACME" and task.responsible_id == ann.id
    assert await comments(deal.id) == []

    await element_service.close_task(task.id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)
    assert runs[0].outputs["task_id"] == task.id and runs[0].outputs["closed_at"]
    assert await comments(deal.id) == ["task done"]


async def test_deleting_an_element_cancels_pending_runs_and_keeps_the_log(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "now"})
    await add_rule(stages["offer"], "add_comment", {"text": "later"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "doomed"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 1)

    await element_service.delete_element("deal", deal.id, actor=SYSTEM)

    assert not await Deal.exists(id=deal.id)
    runs = await element_service.rule_runs("deal", deal.id, actor=SYSTEM)
    assert [r.status for r in runs] == ["succeeded", "cancelled"]
    assert "deleted" in runs[1].reason
    assert await comments(deal.id) == ["now"]


async def test_a_failed_rule_does_not_stop_its_lane_unless_it_says_so(db):
    _, stages = await make_pipeline()
    # The amount template renders to text that is no number: a permanent failure at run time.
    await add_rule(stages["offer"], "modify_element", {"fields": {"amount": "{{deal.title}}"}})
    await add_rule(stages["offer"], "add_comment", {"text": "after failure"}, lane="after_previous")
    await add_rule(stages["invoice"], "modify_element", {"fields": {"amount": "{{deal.title}}"}}, stop_lane_on_failure=True)
    await add_rule(stages["invoice"], "add_comment", {"text": "never"}, lane="after_previous")
    going_on = await element_service.create_element("deal", {"title": "abc"}, stage_id=stages["offer"].id, actor=SYSTEM)
    stopping = await element_service.create_element("deal", {"title": "xyz"}, stage_id=stages["invoice"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", going_on.id, 2)
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert "fields.amount" in runs[0].error and "number" in runs[0].error
    runs = await wait_for_runs("deal", stopping.id, 2)
    assert [r.status for r in runs] == ["failed", "cancelled"]
    assert "lane stopped" in runs[1].reason


async def test_rules_added_later_do_not_run_for_elements_already_in_the_stage(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "v1"})
    deal = await element_service.create_element("deal", {"title": "early"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 1)

    await add_rule(stages["offer"], "add_comment", {"text": "v2"})
    later = await element_service.create_element("deal", {"title": "late"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", later.id, 2)

    assert await comments(deal.id) == ["v1"]
    assert sorted(await comments(later.id)) == ["v1", "v2"]
    early_run = (await element_service.rule_runs("deal", deal.id, actor=SYSTEM))[0]
    late_run = (await element_service.rule_runs("deal", later.id, actor=SYSTEM))[0]
    assert (await early_run.stage_run).revision == 1 and (await late_run.stage_run).revision == 2


async def test_an_empty_anchor_date_skips_the_run_with_a_reason(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "before close"},
                   timing={"kind": "before_field", "field": "close_date", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "no date"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "skipped" and "close_date" in run.reason and "empty" in run.reason


async def test_changing_the_anchor_date_reschedules_the_run(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "reminder"},
                   timing={"kind": "before_field", "field": "close_date", "amount": 1, "unit": "days"})
    far = (clock.utcnow() + timedelta(days=30)).date()
    deal = await element_service.create_element("deal", {"title": "dated", "close_date": far.isoformat()}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)
    assert run.status == "scheduled" and run.due_at.date() == far - timedelta(days=1)

    await element_service.update_element("deal", deal.id, {"close_date": clock.utcnow().date().isoformat()}, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "succeeded"
    assert await comments(deal.id) == ["reminder"]


async def test_a_run_delivered_twice_has_its_effect_once(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "once"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "dup"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)
    await RuleRun.filter(id=run.id).update(status="queued", lease_until=clock.utcnow() + timedelta(minutes=5))

    results = await asyncio.gather(engine.execute(run.id), engine.execute(run.id), engine.execute(run.id))

    assert sorted(results, key=str) == [None, None, "succeeded"]
    await run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 1
    assert await comments(deal.id) == ["once"]


async def test_a_run_held_by_a_lost_worker_runs_again_after_its_lease_expires(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "exactly once"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    deal = await element_service.create_element("deal", {"title": "lost"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)
    # As a worker killed mid-run leaves it: running, one attempt used, its effect rolled back.
    await RuleRun.filter(id=run.id).update(status="running", attempts=1, lease_until=clock.utcnow() - timedelta(seconds=1))

    if db.kind == "sqlite":  # embedded: sweep and execute here; production: the worker's sweeper does it
        recovered = await queue.recover_expired()
        assert recovered == [run.id]
        await engine.execute(run.id)

    [run] = await wait_for_runs("deal", deal.id, 1)
    assert run.status == "succeeded" and run.attempts == 2
    assert await comments(deal.id) == ["exactly once"]


async def _runs_if(deal_id: int, predicate) -> list[RuleRun] | None:
    runs = await RuleRun.filter(element_id=deal_id).order_by("position")
    return runs if runs and predicate(runs) else None



async def test_many_deals_at_once_each_get_every_effect_exactly_once(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6}, key="code")
    await add_rule(stages["offer"], "add_comment", {"text": "{{deal.title}}: {{rules.code.code}}"}, lane="after_previous")
    await add_rule(stages["offer"], "modify_element", {"fields": {"currency": "USD"}})
    deals = [await element_service.create_element("deal", {"title": f"D{i}"}, stage_id=stages["offer"].id, actor=SYSTEM) for i in range(40)]

    for deal in deals:
        runs = await wait_for_runs("deal", deal.id, 3, timeout_s=30)
        assert [r.status for r in runs] == ["succeeded"] * 3
        assert await comments(deal.id) == [f"{deal.title}: {runs[0].outputs['code']}"]
        assert (await Deal.get(id=deal.id)).currency == "USD"



@pytest.mark.production_only
async def test_a_run_claimed_by_one_scheduler_is_skipped_by_another(db):
    """PostgreSQL: claims lock their rows (FOR UPDATE SKIP LOCKED) until the claim commits."""
    import contextvars

    from server.db import transaction

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "x"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    for i in range(5):
        await element_service.create_element("deal", {"title": f"C{i}"}, stage_id=stages["offer"].id, actor=SYSTEM)
    db.worker.pause()
    try:
        await RuleRun.filter(status="scheduled").update(due_at=clock.utcnow() - timedelta(seconds=1))
        async with transaction():
            first = await queue.claim_due(limit=2)
            # Another scheduler (its own transaction and connection) while the first has not committed:
            other = asyncio.create_task(queue.claim_due(limit=10), context=contextvars.Context())
            second = await asyncio.wait_for(other, timeout=5)
    finally:
        db.worker.resume()

    assert len(first) == 2 and len(second) == 3
    assert not set(first) & set(second)


async def test_a_run_that_keeps_losing_its_worker_fails_and_its_lane_goes_on(db, monkeypatch):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "poison"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    await add_rule(stages["offer"], "add_comment", {"text": "next"}, lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "lost again"}, stage_id=stages["offer"].id, actor=SYSTEM)
    first, _ = await RuleRun.filter(element_id=deal.id).order_by("position")
    await RuleRun.filter(id=first.id).update(status="running", attempts=5, lease_until=clock.utcnow() - timedelta(seconds=1))

    if db.kind == "sqlite":  # production: the worker's sweeper does this
        await queue.recover_expired()

    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert "lost 5 times" in runs[0].error
    assert await comments(deal.id) == ["next"]
