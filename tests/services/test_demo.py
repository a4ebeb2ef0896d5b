"""The demo data: loaded once into an empty database, valid rules, and working automation."""

import re

from server import clock
from server.actor import SYSTEM
from server.models import (
    Activity,
    DealContact,
    FeedPost,
    Lead,
    Notification,
    Pipeline,
    Rule,
    RuleRun,
    Stage,
    TimelineEntry,
    Trigger,
    TriggerActivation,
    User,
)
from server.rules.actions import registry
from server.rules.triggers import registry as trigger_registry
from server.services import elements as element_service
from server.services import rules as rule_service
from server.services import triggers as trigger_service
from server.services.demo import load_demo_if_empty
from tests.support import wait_for_runs, wait_until


async def test_demo_loads_only_into_an_empty_database(db):
    assert await load_demo_if_empty() is True
    counts = (await User.all().count(), await Pipeline.all().count(), await Rule.all().count())

    assert await load_demo_if_empty() is False
    assert (await User.all().count(), await Pipeline.all().count(), await Rule.all().count()) == counts


async def test_demo_is_skipped_when_users_exist(db):
    await User.create(name="Existing", email="existing@example.com")

    assert await load_demo_if_empty() is False
    assert not await Pipeline.exists()


async def test_demo_has_lead_and_deal_pipelines_with_stages(db):
    await load_demo_if_empty()

    pipelines = await Pipeline.all()
    stage_counts = {p.id: await Stage.filter(pipeline_id=p.id).count() for p in pipelines}
    leads = [p for p in pipelines if p.entity_type == "lead" and stage_counts[p.id] >= 4]
    deals = [p for p in pipelines if p.entity_type == "deal" and stage_counts[p.id] >= 4]
    assert len(leads) >= 1 and len(deals) >= 2
    assert {await User.filter(role=r).count() > 0 for r in ("admin", "manager", "employee")} == {True}


async def test_every_demo_rule_saves_again_unchanged(db):
    await load_demo_if_empty()
    rules = await Rule.all()
    assert {r.action_type for r in rules} == set(registry())  # a new user sees every action at work

    for rule in rules:
        saved = await rule_service.update_rule(rule.id, rule_service.RuleInput(), actor=SYSTEM)
        assert (saved.params, saved.condition, saved.timing) == (rule.params, rule.condition, rule.timing)


async def test_demo_has_a_trigger_of_every_type_and_each_saves_again_unchanged(db):
    await load_demo_if_empty()
    triggers = await Trigger.all()
    assert {t.trigger_type for t in triggers} == set(trigger_registry())

    for trigger in triggers:
        saved = await trigger_service.update_trigger(trigger.id, trigger_service.TriggerInput(), actor=SYSTEM)
        assert (saved.settings, saved.condition) == (trigger.settings, trigger.condition)
    [webhook] = [t for t in triggers if t.trigger_type == "webhook"]
    assert webhook.token  # its URL works from the start


async def test_deal_entering_the_promo_stage_gets_its_promo_code_comment(db):
    await load_demo_if_empty()
    promo = await Rule.get(key="promo", action_type="generate_code")
    deal = await element_service.create_element("deal", {"title": "Repeat order"}, stage_id=promo.stage_id, actor=SYSTEM)

    await wait_for_runs("deal", deal.id, len(await Rule.filter(stage_id=promo.stage_id)))
    runs = [r for r in await RuleRun.filter(element_id=deal.id, element_type="deal").order_by("id")
            if r.rule_key in ("promo", "promo_comment")]

    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    comments = [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")]
    assert comments == [f"Your promo code: {runs[0].outputs['code']}"]
    assert re.fullmatch(r"Your promo code: [0-9A-Z]{8}", comments[0])


async def immediate_runs_settled() -> bool:
    pending = await RuleRun.filter(status__in=("queued", "running")).exists()
    due = await RuleRun.filter(status="scheduled", due_at__lte=clock.utcnow()).exists()
    return not pending and not due


async def test_demo_elements_run_their_rules_without_failures(db):
    await load_demo_if_empty()

    await wait_until(immediate_runs_settled, what="the demo's immediate runs to finish")
    assert await RuleRun.filter(status="succeeded").exists()
    assert [(r.rule_key, r.error) for r in await RuleRun.filter(status__in=("failed", "stopped"))] == []
    # The demo's own rules cause events (a lead handed out, a deal's priority set) that move nothing.
    assert [a.reason for a in await TriggerActivation.filter(outcome__in=("moved", "stopped"))] == []


async def test_every_demo_action_has_run_or_is_due(db):
    await load_demo_if_empty()

    await wait_until(immediate_runs_settled, what="the demo's immediate runs to finish")
    worked = {r.action_type for r in await RuleRun.filter(status__in=("succeeded", "waiting"))}
    # Change stage waits behind Wait rules, Delete element 30 days on the Junk stage, Add to exceptions for a
    # spam lead in Junk (the demo has none); every other action has done its work at least once.
    assert set(registry()) - worked == {"change_stage", "delete_element", "add_to_exceptions"}
    assert await RuleRun.filter(action_type="delete_element").count() == 0
    assert await Activity.filter(kind="meeting").exists() and await Activity.filter(kind="call").exists()
    assert await Notification.filter(kind="control").exists() and await FeedPost.exists()
    heat_pump = await Lead.get(title="Heat pump enquiry")
    assert heat_pump.responsible_id is not None and heat_pump.contact_id is not None and heat_pump.is_repeat
    workshop = await Lead.get(title="Workshop lighting")
    assert workshop.converted_deal_id is not None
    assert await DealContact.filter(deal_id=workshop.converted_deal_id, contact_id=workshop.contact_id).exists()
