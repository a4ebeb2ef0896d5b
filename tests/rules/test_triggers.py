"""SPEC §5 triggers: first forward match, moving back only when allowed, one trigger per event, every
evaluation recorded, the loop guard across triggers and Change stage rules, and the inbound webhook trigger."""

import asyncio

import pytest

from server.actor import SYSTEM
from server.errors import ValidationFailed
from server.models import Contact, Deal, DealContact, Pipeline, RuleRun, Stage, Task, TriggerActivation
from server.rules import engine
from server.rules.triggering import Event, Occurrence
from server.rules.triggers import registry
from server.rules.triggers.base import CHAT_MESSAGE
from server.services import elements as element_service
from server.services import triggers as trigger_service
from tests.support import add_rule, make_user, wait_for_runs, wait_until

pytestmark = pytest.mark.production_backend


async def six_stages() -> dict[str, Stage]:
    """s1 … s6 in progress, then won and lost."""
    pipeline = await Pipeline.create(name="Sales", entity_type="deal", is_default=True)
    codes = [(f"s{n}", "in_progress") for n in range(1, 7)] + [("won", "success"), ("lost", "failure")]
    return {code: await Stage.create(pipeline=pipeline, code=code, name=code.upper(), position=position,
                                     semantic=semantic) for position, (code, semantic) in enumerate(codes)}


async def add_trigger(stage: Stage, trigger_type: str, settings: dict | None = None, **values):
    return await trigger_service.create_trigger(stage.id, trigger_service.TriggerInput(
        trigger_type=trigger_type, settings=settings or {}, **values), actor=SYSTEM)


async def deal_in(stage: Stage, **fields) -> Deal:
    return await element_service.create_element("deal", {"title": "ACME", **fields}, stage_id=stage.id, actor=SYSTEM)


async def stage_of(deal: Deal) -> str:
    return (await Stage.get(id=(await Deal.get(id=deal.id)).stage_id)).code


async def test_the_first_matching_trigger_ahead_moves_the_element_once(db):
    stages = await six_stages()
    three = await add_trigger(stages["s3"], "field_changed", {"fields": ["amount"]}, name="Priced")
    await add_trigger(stages["s5"], "field_changed", {"fields": ["amount"]}, name="Priced too")
    await add_rule(stages["s3"], "add_comment", {"text": "arrived in S3"})
    deal = await deal_in(stages["s1"])

    await element_service.update_element("deal", deal.id, {"amount": "2500"}, actor=SYSTEM)

    assert await stage_of(deal) == "s3"
    [activation] = await TriggerActivation.filter(element_id=deal.id)
    assert (activation.outcome, activation.trigger_id) == ("moved", three.id)
    assert [(e["name"], e["matched"], e["why"]) for e in activation.evaluations] == [
        ("Priced", True, "matched"), ("Priced too", False, "not tried: “Priced” fired first")]
    runs = await wait_for_runs("deal", deal.id, 1)
    assert [r.status for r in runs] == ["succeeded"]  # the new stage's rules ran


async def test_a_trigger_behind_the_element_moves_it_only_when_it_allows_moving_back(db):
    stages = await six_stages()
    behind = await add_trigger(stages["s2"], "field_changed", {"fields": ["title"]}, name="Renamed")
    deal = await deal_in(stages["s4"])

    await element_service.update_element("deal", deal.id, {"title": "ACME 2"}, actor=SYSTEM)
    assert await stage_of(deal) == "s4"
    [refused] = await TriggerActivation.filter(element_id=deal.id)
    assert refused.outcome == "no_match"
    assert refused.evaluations[0]["why"] == "its stage is behind the element's and it does not allow moving back"

    await trigger_service.update_trigger(behind.id, trigger_service.TriggerInput(allow_back=True), actor=SYSTEM)
    await element_service.update_element("deal", deal.id, {"title": "ACME 3"}, actor=SYSTEM)
    assert await stage_of(deal) == "s2"


async def test_settings_and_conditions_on_the_event_decide_and_say_why_not(db):
    stages = await six_stages()
    await add_trigger(stages["s3"], "field_changed", {"fields": ["amount"]}, name="Big deal",
                      condition=[[{"field": "event.new", "op": "gte", "value": 5000}]])
    deal = await deal_in(stages["s1"])

    await element_service.update_element("deal", deal.id, {"amount": "1200"}, actor=SYSTEM)
    await element_service.update_element("deal", deal.id, {"title": "Renamed"}, actor=SYSTEM)
    assert await stage_of(deal) == "s1"
    whys = [a.evaluations[0]["why"] for a in await TriggerActivation.filter(element_id=deal.id).order_by("id")]
    assert whys[0] == "condition not met: event.new is at least 5,000 (event.new is “1200”)"
    assert whys[1] == "“title” is not a watched field (amount)"

    await element_service.update_element("deal", deal.id, {"amount": "7500"}, actor=SYSTEM)
    assert await stage_of(deal) == "s3"


async def test_a_trigger_and_a_change_stage_rule_sending_the_element_back_and_forth_stop_as_a_loop(db):
    stages = await six_stages()
    await add_rule(stages["s1"], "change_stage", {"stage": stages["s2"].id})
    await add_rule(stages["s2"], "modify_element", {"fields": {"amount": "100"}})
    await add_trigger(stages["s1"], "field_changed", {"fields": ["amount"]}, name="Back to start", allow_back=True)
    deal = await deal_in(stages["s1"])

    async def stopped():
        return await RuleRun.filter(element_id=deal.id, status="stopped").first()

    run = await wait_until(stopped, what="a run stopped by the loop guard")
    assert run.reason.startswith("stopped: loop")


async def test_a_closed_task_and_a_new_responsible_fire_their_triggers(db):
    stages = await six_stages()
    ann, bob = await make_user("Ann"), await make_user("Bob")
    await add_trigger(stages["s2"], "task_status_changed", {"statuses": ["closed"]}, name="Task done")
    await add_trigger(stages["s4"], "responsible_changed", name="Handed over")
    deal = await deal_in(stages["s1"], responsible=ann.id)
    task = await Task.create(title="Call back", element_type="deal", element_id=deal.id, responsible_id=ann.id)

    await element_service.close_task(task.id, actor=SYSTEM)
    assert await stage_of(deal) == "s2"
    await element_service.update_element("deal", deal.id, {"responsible": bob.id}, actor=SYSTEM)
    assert await stage_of(deal) == "s4"


async def test_an_event_on_a_contact_moves_its_open_deals_and_not_its_won_ones(db):
    stages = await six_stages()
    await add_trigger(stages["s3"], "chat_message", name="Chatted")
    contact = await Contact.create(name="Anna", emails=[{"value": "anna@acme.example", "type": "work"}])
    open_deal, won_deal = await deal_in(stages["s1"]), await deal_in(stages["won"])
    for deal in (open_deal, won_deal):
        await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)

    from server.db import transaction

    async with transaction():
        await engine.fire_triggers(Occurrence(Event(CHAT_MESSAGE, {"from": "anna@acme.example", "text": "hi"}),
                                              client_type="contact", client_id=contact.id))

    assert (await stage_of(open_deal), await stage_of(won_deal)) == ("s3", "won")


async def test_trigger_settings_and_conditions_are_checked_at_save(db):
    stages = await six_stages()
    with pytest.raises(ValidationFailed) as failure:
        await add_trigger(stages["s2"], "field_changed", {"fields": ["colour"]},
                          condition=[[{"field": "event.nope", "op": "eq", "value": 1}]])
    errors = {e.field: e.message for e in failure.value.errors}
    assert errors["settings.fields.0"] == "deals have no field 'colour'"
    assert "condition.0.0.field" in errors
    with pytest.raises(ValidationFailed) as failure:
        await add_trigger(stages["s2"], "teleport")
    assert failure.value.errors[0].field == "trigger_type"


@pytest.mark.parametrize("key", sorted(registry()))
async def test_every_trigger_type_matches_its_example_and_describes_itself(key):
    trigger_type = registry()[key]
    settings = trigger_type.Settings.model_validate(trigger_type.example.settings)

    assert trigger_type.matches(settings, trigger_type.example.event) is None
    assert trigger_type.describe(settings).startswith("When ")
    assert set(trigger_type.example.event.data) <= set(trigger_type.data_fields) | {"payload"}


# ---------------------------------------------------------------- the inbound webhook trigger


async def test_a_webhook_trigger_moves_once_per_idempotency_key_and_refuses_a_wrong_url(db, client):
    stages = await six_stages()
    trigger = await add_trigger(stages["s3"], "webhook", name="Paid in the shop",
                                condition=[[{"field": "event.payload.source", "op": "eq", "value": "shop"}]])
    deal = await deal_in(stages["s1"])
    body = {"element_type": "deal", "element_id": deal.id, "source": "shop"}

    first, again = await asyncio.gather(*(client.post(f"/hooks/triggers/{trigger.token}", json=body,
                                                      headers={"Idempotency-Key": "order-77"}) for _ in range(2)))

    assert first.status_code == again.status_code == 200
    answers = sorted([first.json(), again.json()], key=lambda a: a["duplicate"])
    assert answers[0]["outcome"] == "moved" and answers[1] == {**answers[0], "duplicate": True}
    assert await stage_of(deal) == "s3"
    assert await TriggerActivation.filter(element_id=deal.id).count() == 1

    wrong = await client.post("/hooks/triggers/not-the-token", json=body)
    assert wrong.status_code == 404
    malformed = await client.post(f"/hooks/triggers/{trigger.token}", json={"element_type": "deal"})
    assert malformed.status_code == 422 and malformed.json()["fields"][0]["field"] == "element_id"
    broken = await client.post(f"/hooks/triggers/{trigger.token}", content=b"{not json")
    assert broken.status_code == 400
    assert await TriggerActivation.filter(element_id=deal.id).count() == 1


async def test_a_payment_above_the_minimum_moves_the_deal_and_a_retried_report_counts_once(db):
    from server.models import Payment
    from server.services import payments

    stages = await six_stages()
    await add_trigger(stages["s5"], "payment_received", {"min_amount": "500"}, name="Paid")
    deal = await deal_in(stages["s2"])

    await payments.record_payment("deal", deal.id, amount="120", reference="INV-1", actor=SYSTEM)
    assert await stage_of(deal) == "s2"
    first, new = await payments.record_payment("deal", deal.id, amount="900", reference="INV-2",
                                               idempotency_key="psp-9", actor=SYSTEM)
    again, repeated = await payments.record_payment("deal", deal.id, amount="900", reference="INV-2",
                                                    idempotency_key="psp-9", actor=SYSTEM)

    assert await stage_of(deal) == "s5"
    assert (new, repeated, again.id) == (True, False, first.id)
    assert await Payment.filter(element_id=deal.id).count() == 2
    with pytest.raises(ValidationFailed) as failure:
        await payments.record_payment("deal", deal.id, amount="-3", actor=SYSTEM)
    assert failure.value.errors[0].field == "amount"


async def test_a_customers_missed_call_and_email_move_their_open_deal_through_the_matching_triggers(db):
    from server.kinds import Channel
    from server.services import inbound

    stages = await six_stages()
    await add_trigger(stages["s2"], "missed_call", name="Missed them")
    await add_trigger(stages["s4"], "incoming_email", {"subject_contains": "order"}, name="They order")
    contact = await Contact.create(name="Anna", emails=[{"value": "anna@acme.example", "type": "work"}],
                                   phones=[{"value": "+49301234567", "type": "work"}])
    deal = await deal_in(stages["s1"])
    await DealContact.create(deal_id=deal.id, contact_id=contact.id, position=0)

    await inbound.record(inbound.Inbound(channel=Channel.call, sender="+49301234567",
                                         meta={"direction": "missed", "from": "+49301234567", "to": "200"}))
    assert await stage_of(deal) == "s2"
    await inbound.record(inbound.Inbound(channel=Channel.email, sender="anna@acme.example", subject="Hello"))
    assert await stage_of(deal) == "s2"  # not an order
    await inbound.record(inbound.Inbound(channel=Channel.email, sender="anna@acme.example", subject="Our order"))
    assert await stage_of(deal) == "s4"
