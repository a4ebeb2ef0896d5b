"""Explain: why each rule of an element ran, was skipped, cancelled, failed, stopped or waits, and which trigger
moved it, in sentences read from what the engine recorded at the time."""

from datetime import UTC, datetime

import pytest

from server.actor import SYSTEM, actor_for
from server.errors import Forbidden
from server.models import Deal, Pipeline, RuleRun, Stage
from server.services import elements as element_service
from server.services import triggers as trigger_service
from server.services.explain import explain, run_sentence
from tests.support import add_rule, make_user, wait_for_runs, wait_until

pytestmark = pytest.mark.production_backend


async def stages() -> dict[str, Stage]:
    pipeline = await Pipeline.create(name="Sales", entity_type="deal", is_default=True)
    codes = [("new", "New", "in_progress"), ("offer", "Offer", "in_progress"), ("check", "Check", "in_progress"),
             ("won", "Won", "success")]
    return {code: await Stage.create(pipeline=pipeline, code=code, name=name, position=position, semantic=semantic)
            for position, (code, name, semantic) in enumerate(codes)}


def sentences(explanation, stage_name: str) -> list[str]:
    return [r.sentence for s in explanation.stays if s.stage_name == stage_name for r in s.runs]


async def test_explain_says_why_rules_were_skipped_failed_cancelled_and_waiting(db):
    board = await stages()
    offer = board["offer"]
    await add_rule(offer, "add_comment", {"text": "Big one"}, title="Flag big deals",
                   condition=[[{"field": "deal.amount", "op": "gt", "value": 5000}]])
    await add_rule(offer, "send_email", {"subject": "Hi", "text": "x", "client": "company"}, title="Mail the company")
    await add_rule(offer, "add_comment", {"text": "Later"}, title="Remind tomorrow",
                   timing={"kind": "after", "amount": 1, "unit": "days"})
    await add_rule(offer, "wait", {"days": 5, "description": "offer sent"}, title="Wait for the reply")
    deal = await element_service.create_element("deal", {"title": "Acme roof", "amount": 1200},
                                                stage_id=offer.id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 3, statuses=("skipped", "failed", "waiting"))
    await element_service.move_element("deal", deal.id, board["won"].id, actor=SYSTEM)

    explanation = await explain("deal", deal.id, actor=SYSTEM)

    [won, stay] = explanation.stays  # newest first
    assert won.stage_name == "Won" and stay.stage_name == "Offer"
    assert stay.sentence.startswith("Entered “Offer” at ") and "(created)" in stay.sentence
    said = sentences(explanation, "Offer")
    assert said[0] == ("“Flag big deals” was skipped: condition not met: deal.amount is more than 5,000 "
                       "(deal.amount is 1,200).")
    assert said[1] == "“Mail the company” failed after 1 attempt: the deal has no company with a email address."
    assert said[2].startswith("“Remind tomorrow” was cancelled at ") and said[2].endswith("left stage for 'Won'.")
    assert said[3].startswith("“Wait for the reply” was cancelled") and said[3].endswith("left stage for 'Won'.")
    failed = next(r for s in explanation.stays for r in s.runs if r.status == "failed")
    assert (failed.attempts, failed.error) == (1, "the deal has no company with a email address")


async def test_a_waiting_run_and_a_retry_say_until_when(db):
    waiting = RuleRun(title="Wait for the reply", status="waiting", attempts=1,
                      reason="waiting for customer activity until 2026-12-09T10:00",
                      due_at=datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
    retrying = RuleRun(title="Call the CRM", status="scheduled", attempts=2, error="connection refused",
                       reason="retry 3 of 5 in 0.4 s", due_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert run_sentence(waiting, tz_name="Europe/Berlin") == (
        "“Wait for the reply” is waiting for customer activity until 2026-12-09T10:00 "
        "(it times out at Wed 9 Dec 2026 11:00 Europe/Berlin).")
    assert run_sentence(retrying, tz_name="UTC") == (
        "“Call the CRM” failed attempt 2 (connection refused); next retry at Tue 1 Dec 2026 09:00 UTC.")


async def test_a_loop_is_explained_with_its_chain_of_moves(db):
    board = await stages()
    await add_rule(board["offer"], "change_stage", {"stage": board["check"].id}, title="To check")
    await add_rule(board["check"], "change_stage", {"stage": board["offer"].id}, title="Back to offer")
    deal = await element_service.create_element("deal", {"title": "Loop"}, stage_id=board["offer"].id, actor=SYSTEM)

    async def stopped():
        return await RuleRun.filter(element_id=deal.id, status="stopped").first()

    await wait_until(stopped, what="the loop guard")
    said = sentences(await explain("deal", deal.id, actor=SYSTEM), "Check")
    assert said == ["“Back to offer” was stopped: loop (deal already entered stage 'Offer' in this chain). "
                    "The chain of moves: “Offer” → “Check”."]


async def test_explain_says_which_trigger_moved_it_and_why_the_others_did_not(db):
    board = await stages()
    for stage, name, minimum in ((board["check"], "Huge deal", 100_000), (board["won"], "Big deal", 5000)):
        await trigger_service.create_trigger(stage.id, trigger_service.TriggerInput(
            trigger_type="field_changed", settings={"fields": ["amount"]}, name=name,
            condition=[[{"field": "event.new", "op": "gte", "value": minimum}]]), actor=SYSTEM)
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=board["new"].id, actor=SYSTEM)
    await element_service.update_element("deal", deal.id, {"amount": "7500"}, actor=SYSTEM)

    explanation = await explain("deal", deal.id, actor=SYSTEM)

    [moved] = explanation.activations
    assert moved.outcome == "“Big deal” moved it from “New” to “Won”"
    assert any(line.startswith("“Huge deal” (on “Check”) did not match: condition not met")
               for line in moved.evaluations)
    assert "(trigger 'Big deal')" in explanation.stays[0].sentence


async def test_an_employee_may_explain_only_their_own_deals(db):
    board = await stages()
    owner, other = await make_user("Owner", role="employee"), await make_user("Other", role="employee")
    deal = await element_service.create_element("deal", {"title": "Mine", "responsible": owner.id},
                                                stage_id=board["new"].id, actor=SYSTEM)
    assert (await explain("deal", deal.id, actor=actor_for(owner))).element_id == deal.id
    with pytest.raises(Forbidden):
        await explain("deal", deal.id, actor=actor_for(other))
    assert await Deal.exists(id=deal.id)
