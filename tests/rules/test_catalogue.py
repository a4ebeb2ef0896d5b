"""SPEC §4, the rest of the in-CRM catalogue: each rule configured on a stage, an element moved there, the effect found."""

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server import clock
from server.actor import SYSTEM
from server.errors import ValidationFailed
from server.models import (
    Activity,
    AuditEntry,
    Company,
    Contact,
    CustomField,
    Deal,
    DealContact,
    Event,
    FeedPost,
    FeedRecipient,
    Lead,
    Notification,
    Pipeline,
    RoundRobinCursor,
    RuleRun,
    StageRun,
    TimelineEntry,
)
from server.rules import engine, queue
from server.services import elements as element_service
from server.services import feed
from tests.support import ClockControl, add_rule, make_pipeline, make_user, wait_for_runs, wait_until
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

LATER = {"kind": "after", "amount": 1, "unit": "days"}


async def refused(stage, action_type, params, **values) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as failure:
        await add_rule(stage, action_type, params, **values)
    return {e.field: e.message for e in failure.value.errors}


async def one_run(element_type: str, element_id: int) -> RuleRun:
    [run] = await wait_for_runs(element_type, element_id, 1)
    return run


async def deliver_three_times(run: RuleRun, clock_control: ClockControl) -> list[str | None]:
    """As broker redelivery and a second worker would: a run the engine made due and queued, executed three
    times at once (the test's workers are paused, so these three are the only ones)."""
    clock_control.advance(timedelta(days=1, minutes=1))  # LATER has come
    assert await queue.claim_due() == [run.id]
    return await asyncio.gather(engine.execute(run.id), engine.execute(run.id), engine.execute(run.id))


async def delivered_again(run: RuleRun) -> str | None:
    """A finished run's message delivered once more, as a broker may: the worker finds it done and does nothing."""
    return await engine.execute(run.id)


def between(moment: datetime, low: datetime, high: datetime) -> bool:
    return low.replace(microsecond=0) <= moment <= high


# ---------------------------------------------------------------- activity, call, meeting


async def test_activity_is_created_for_each_named_responsible(db):
    ann, bob, carl = await make_user("Ann"), await make_user("Bob"), await make_user("Carl")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "activity", {
        "subject": "Prepare {{deal.title}}", "description": "Amount {{deal.amount}}", "start_in": 2, "start_unit": "hours",
        "duration_minutes": 45, "important": True, "reminder_minutes": 15, "responsibles": [bob.id, carl.id],
    })
    before = clock.utcnow()
    deal = await element_service.create_element("deal", {"title": "Acme", "amount": 10, "responsible": ann.id},
                                                stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    activities = await Activity.filter(rule_run_id=run.id).order_by("id")
    assert [a.responsible_id for a in activities] == [bob.id, carl.id]
    for activity in activities:
        assert (activity.kind, activity.subject, activity.description) == ("activity", "Prepare Acme", "Amount 10.00")
        assert between(activity.start_at, before + timedelta(hours=2), clock.utcnow() + timedelta(hours=2))
        assert activity.end_at - activity.start_at == timedelta(minutes=45)
        assert (activity.important, activity.reminder_minutes, activity.auto_complete) == (True, 15, False)
        assert (activity.element_type, activity.element_id, activity.completed) == ("deal", deal.id, False)
    assert run.outputs["activity_id"] == activities[0].id
    assert run.outputs["activity_ids"] == [a.id for a in activities]
    assert await Notification.filter(rule_run_id=run.id).count() == 0  # a plain activity does not notify


async def test_activity_starts_from_a_date_field_at_a_time_in_the_responsibles_zone(db):
    ann = await make_user("Ann", timezone="Europe/Berlin")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "activity", {
        "subject": "Day before closing", "start_field": "close_date", "start_in": -1, "start_unit": "days",
        "start_time": "10:00",
    })
    deal = await element_service.create_element(
        "deal", {"title": "Acme", "close_date": "2030-03-10", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM
    )

    run = await one_run("deal", deal.id)

    [activity] = await Activity.filter(rule_run_id=run.id)
    assert activity.responsible_id == ann.id  # the element's responsible by default
    assert activity.start_at == datetime(2030, 3, 9, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET)
    assert activity.end_at == datetime(2030, 3, 9, 9, 30, tzinfo=UTC)


async def test_activity_with_an_empty_start_field_fails_with_the_reason(db):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "activity", {"subject": "x", "start_field": "close_date", "start_in": 0})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "failed"
    assert "close_date is empty" in run.error
    assert await Activity.all().count() == 0


async def test_activity_params_are_checked_at_save(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "activity", {
        "subject": "x", "responsibles": [901], "start_field": "title", "start_in": -2,
    })
    assert errors == {"params.responsibles.0": "user 901 does not exist",
                      "params.start_field": "'title' is not a date field of a deal"}
    assert set(await refused(stages["offer"], "activity", {"subject": ""})) == {"params.subject"}
    assert await refused(stages["offer"], "activity", {"subject": "x", "start_in": -2}) == {
        "params": "a start before now needs a date field to count back from (start_field)"}
    assert set(await refused(stages["offer"], "activity", {"subject": "x", "start_time": "25h"})) == {"params.start_time"}
    assert set(await refused(stages["offer"], "activity", {"subject": "x", "duration_minutes": 0})) == {"params.duration_minutes"}


async def test_schedule_call_creates_the_call_and_notifies_the_responsible(db):
    ann, boss = await make_user("Ann", timezone="Europe/London"), await make_user("Boss")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "schedule_call", {"subject": "Call {{deal.title}}", "start_in": 30,
                                                      "start_unit": "minutes", "reminder_minutes": 5},
                   run_as_id=boss.id)
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    [call] = await Activity.filter(rule_run_id=run.id)
    assert (call.kind, call.subject, call.responsible_id) == ("call", "Call Acme", ann.id)
    [note] = await Notification.filter(recipient_id=ann.id)
    assert (note.kind, note.sender_id, note.element_type, note.element_id) == ("call", boss.id, "deal", deal.id)
    local = call.start_at.astimezone(ZoneInfo("Europe/London"))
    assert note.text == f"Call scheduled: Call Acme, {local:%Y-%m-%d %H:%M} (Europe/London)"
    assert not note.read


async def test_schedule_meeting_notifies_every_responsible_and_leaving_the_stage_completes_it(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "schedule_meeting", {
        "subject": "Kick-off", "start_in": 1, "start_unit": "days", "duration_minutes": 60,
        "responsibles": [ann.id, bob.id], "auto_complete": True,
    })
    await add_rule(stages["offer"], "activity", {"subject": "Stays open", "responsibles": [ann.id]})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)
    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    meetings = await Activity.filter(kind="meeting").order_by("id")
    assert [m.responsible_id for m in meetings] == [ann.id, bob.id]
    assert sorted((n.recipient_id, n.kind) for n in await Notification.all()) == [(ann.id, "meeting"), (bob.id, "meeting")]

    await element_service.move_element("deal", deal.id, stages["invoice"].id, actor=SYSTEM)

    for meeting in meetings:
        await meeting.refresh_from_db()
        assert meeting.completed and meeting.completed_at is not None
        assert meeting.sequence == 1
    open_one = await Activity.get(kind="activity")
    assert not open_one.completed and open_one.sequence == 0


async def test_activity_run_delivered_twice_creates_each_activity_once(db, clock_control, worker_paused):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "schedule_meeting", {"subject": "Once", "responsibles": [ann.id, bob.id]},
                   timing=LATER)
    deal = await element_service.create_element("deal", {"title": "dup"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)

    results = await deliver_three_times(run, clock_control)
    assert sorted(results, key=str) == [None, None, "succeeded"]
    assert await delivered_again(run) is None

    assert await Activity.filter(element_id=deal.id).count() == 2
    assert await Notification.filter(element_id=deal.id).count() == 2
    await run.refresh_from_db()
    assert run.outputs["activity_ids"] == [a.id for a in await Activity.filter(element_id=deal.id).order_by("id")]


# ---------------------------------------------------------------- control and notification


async def test_control_notifies_the_supervisor_and_named_users(db):
    boss = await make_user("Boss")
    ann = await make_user("Ann", supervisor_id=boss.id)
    auditor = await make_user("Auditor")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "control", {"message": "{{deal.title}} reached the offer stage",
                                                "users": [auditor.id, boss.id]})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    notes = await Notification.filter(rule_run_id=run.id).order_by("recipient_id")
    assert [(n.recipient_id, n.kind, n.text) for n in notes] == [
        (boss.id, "control", "Acme reached the offer stage"), (auditor.id, "control", "Acme reached the offer stage"),
    ]
    assert all(n.sender_id == ann.id and n.element_id == deal.id for n in notes)
    assert sorted(run.outputs["notified"]) == [boss.id, auditor.id]


async def test_control_without_anyone_to_tell_fails_clearly(db):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "control", {"message": "look"})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "failed"
    assert "has no supervisor" in run.error


async def test_control_params_are_checked_at_save(db):
    _, stages = await make_pipeline()
    assert await refused(stages["offer"], "control", {"message": "x", "to_supervisor": False}) == {
        "params": "notify the responsible's supervisor, or name users, or both"}
    assert await refused(stages["offer"], "control", {"message": "x", "users": [404]}) == {
        "params.users.0": "user 404 does not exist"}


async def test_notification_reaches_named_users_and_roles_once_each(db):
    ann = await make_user("Ann", role="manager")
    bob = await make_user("Bob", role="manager")
    carl = await make_user("Carl")
    await make_user("Gone", role="manager", active=False)
    sender = await make_user("Sender", role="admin")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "notification", {"text": "New offer: {{deal.title}}", "sender": sender.id,
                                                     "users": [carl.id, ann.id], "roles": ["manager"]})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    notes = await Notification.filter(rule_run_id=run.id).order_by("id")
    assert [n.recipient_id for n in notes] == [carl.id, ann.id, bob.id]
    assert {(n.text, n.sender_id, n.kind) for n in notes} == {("New offer: Acme", sender.id, "notification")}
    events = await Event.filter(kind="notification", element_type="deal", element_id=deal.id).order_by("id")
    assert [(e.audience, e.payload["text"], e.payload["id"]) for e in events] == [
        ([n.recipient_id], "New offer: Acme", n.id) for n in notes]


async def test_notification_params_need_recipients_and_known_roles(db):
    _, stages = await make_pipeline()
    assert await refused(stages["offer"], "notification", {"text": "x"}) == {
        "params": "name the users or roles (admin, manager, employee) to notify"}
    assert set(await refused(stages["offer"], "notification", {"text": "x", "roles": ["boss"]})) == {"params.roles.0"}
    assert await refused(stages["offer"], "notification", {"text": "x", "users": [1000], "sender": 1001}) == {
        "params.sender": "user 1001 does not exist", "params.users.0": "user 1000 does not exist"}


async def test_notification_run_delivered_twice_notifies_once(db, clock_control, worker_paused):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "notification", {"text": "once", "users": [ann.id]}, timing=LATER)
    deal = await element_service.create_element("deal", {"title": "dup"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)

    assert sorted(await deliver_three_times(run, clock_control), key=str) == [None, None, "succeeded"]
    assert await delivered_again(run) is None

    assert [n.text for n in await Notification.filter(recipient_id=ann.id)] == ["once"]


# ---------------------------------------------------------------- change responsible


async def test_change_responsible_first_present_user_with_an_audit_entry(db):
    ann = await make_user("Ann")
    away = await make_user("Away", absent=True)
    bob = await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_responsible", {"users": [away.id, bob.id], "mode": "first"})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"responsible_id": bob.id}
    assert (await Deal.get(id=deal.id)).responsible_id == bob.id
    [audit] = await AuditEntry.filter(element_id=deal.id, rule_run_id=run.id)
    assert (audit.field, json.loads(audit.old_value), json.loads(audit.new_value)) == ("responsible", ann.id, bob.id)


async def test_change_responsible_without_skipping_takes_the_absent_user(db):
    away = await make_user("Away", absent=True)
    bob = await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_responsible", {"users": [away.id, bob.id], "skip_absent": False})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    assert (await one_run("deal", deal.id)).outputs == {"responsible_id": away.id}


async def test_change_responsible_fails_when_everyone_is_absent(db):
    away = await make_user("Away", absent=True)
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_responsible", {"users": [away.id], "mode": "random"})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)
    assert run.status == "failed" and "absent" in run.error


async def test_change_responsible_random_picks_a_present_user_of_the_list(db):
    users = [await make_user(n) for n in ("Ann", "Bob", "Carl")]
    away = await make_user("Away", absent=True)
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_responsible", {"users": [away.id, *[u.id for u in users]], "mode": "random"})
    deals = [await element_service.create_element("deal", {"title": f"R{i}"}, stage_id=stages["offer"].id, actor=SYSTEM) for i in range(6)]

    chosen = [(await one_run("deal", d.id)).outputs["responsible_id"] for d in deals]
    assert set(chosen) <= {u.id for u in users}


async def test_round_robin_hands_out_in_turn_and_skips_absent_users(db):
    ann, bob, carl = await make_user("Ann"), await make_user("Bob", absent=True), await make_user("Carl")
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "change_responsible", {"users": [ann.id, bob.id, carl.id], "mode": "round_robin"})

    chosen = []
    for i in range(5):
        deal = await element_service.create_element("deal", {"title": f"RR{i}"}, stage_id=stages["offer"].id, actor=SYSTEM)
        chosen.append((await one_run("deal", deal.id)).outputs["responsible_id"])

    assert chosen == [ann.id, carl.id, ann.id, carl.id, ann.id]
    assert (await RoundRobinCursor.get(rule_id=rule.id)).position == 1


async def test_round_robin_stays_even_when_many_deals_arrive_at_once(db):
    users = [await make_user(n) for n in ("Ann", "Bob", "Carl")]
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_responsible", {"users": [u.id for u in users], "mode": "round_robin"})
    deals = [await element_service.create_element("deal", {"title": f"M{i}"}, stage_id=stages["offer"].id, actor=SYSTEM)
             for i in range(24)]

    for deal in deals:
        await wait_for_runs("deal", deal.id, 1, timeout_s=30)

    counts = Counter(d.responsible_id for d in await Deal.all())
    assert counts == {u.id: 8 for u in users}


async def test_round_robin_run_delivered_twice_advances_once(db, clock_control, worker_paused):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "change_responsible", {"users": [ann.id, bob.id], "mode": "round_robin"},
                          timing=LATER)
    deal = await element_service.create_element("deal", {"title": "dup"}, stage_id=stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)

    assert sorted(await deliver_three_times(run, clock_control), key=str) == [None, None, "succeeded"]

    assert (await RoundRobinCursor.get(rule_id=rule.id)).position == 1
    assert (await Deal.get(id=deal.id)).responsible_id == ann.id


# ---------------------------------------------------------------- convert lead, contact for lead


async def _lead_world():
    ann = await make_user("Ann")
    _, lead_stages = await make_pipeline("lead", name="Leads")
    await make_pipeline("deal", name="Sales")
    partners, partner_stages = await make_pipeline("deal", name="Partners")
    await Pipeline.filter(id=partners.id).update(is_default=False)
    return ann, lead_stages, partners, partner_stages


async def test_converting_a_lead_makes_a_deal_in_the_chosen_pipeline_with_the_leads_contact(db):
    ann, lead_stages, partners, partner_stages = await _lead_world()
    await add_rule(partner_stages["new"], "history_entry", {"text": "partner deal {{deal.title}} opened"})
    await add_rule(lead_stages["offer"], "convert_lead", {"pipeline": partners.id, "create_contact": True})
    company = await Company.create(name="Acme GmbH")
    contact = await Contact.create(name="Katrin Vogel", emails=work("k@acme.example"), company=company)
    lead = await element_service.create_element(
        "lead", {"title": "Acme wants panels", "amount": 1200, "contact": contact.id, "company": company.id,
                 "responsible": ann.id}, stage_id=lead_stages["offer"].id, actor=SYSTEM)

    run = await one_run("lead", lead.id)

    assert run.status == "succeeded", run.error
    deal = await Deal.get(id=run.outputs["deal_id"])
    assert run.outputs == {"deal_id": deal.id, "contact_id": contact.id, "company_id": company.id}
    assert (deal.pipeline_id, deal.stage_id) == (partners.id, partner_stages["new"].id)
    assert (deal.title, str(deal.amount), deal.responsible_id, deal.company_id) == ("Acme wants panels", "1200.00", ann.id, company.id)
    assert [link.contact_id for link in await DealContact.filter(deal_id=deal.id)] == [contact.id]
    assert await Contact.all().count() == 1  # the lead's contact is reused, not copied
    await lead.refresh_from_db()
    assert lead.converted_deal_id == deal.id
    assert lead.stage_id == lead_stages["won"].id  # the lead pipeline's success stage
    lead_stays = await StageRun.filter(element_type="lead", element_id=lead.id).order_by("id")
    assert [(s.stage_id, s.status) for s in lead_stays] == [(lead_stages["offer"].id, "left"), (lead_stages["won"].id, "active")]
    assert lead_stays[1].caused_by_rule_run_id == run.id
    # The deal's stage started its rules, in the same causal chain as the conversion.
    [deal_run] = await wait_for_runs("deal", deal.id, 1)
    assert deal_run.status == "succeeded"
    assert [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="history")] == [
        "partner deal Acme wants panels opened"]
    deal_stay = await StageRun.get(element_type="deal", element_id=deal.id)
    assert deal_stay.chain_id == lead_stays[0].chain_id and deal_stay.depth == 1


async def test_converting_a_lead_without_contact_creates_contact_and_company_from_its_fields(db):
    ann, lead_stages, _, _ = await _lead_world()
    await CustomField.create(entity_type="lead", code="contact_name", name="Contact name", type="string")
    await CustomField.create(entity_type="lead", code="email", name="Email", type="string")
    await CustomField.create(entity_type="lead", code="phone", name="Phone", type="string")
    await add_rule(lead_stages["offer"], "convert_lead", {"create_company": True})
    lead = await element_service.create_element(
        "lead", {"title": "Heat pump", "contact_name": "Paul Wagner", "email": "paul@mail.example",
                 "phone": "0170 5550 8080", "responsible": ann.id}, stage_id=lead_stages["offer"].id, actor=SYSTEM)

    run = await one_run("lead", lead.id)

    assert run.status == "succeeded", run.error
    contact = await Contact.get(id=run.outputs["contact_id"])
    company = await Company.get(id=run.outputs["company_id"])
    assert (contact.name, contact.emails, contact.phones, contact.company_id) == (
        "Paul Wagner", work("paul@mail.example"), [{"value": "+4917055508080", "type": "mobile"}], company.id)
    assert company.name == "Heat pump"
    deal = await Deal.get(id=run.outputs["deal_id"])
    assert (await deal.pipeline).name == "Sales"  # the default deal pipeline
    assert deal.company_id == company.id
    await lead.refresh_from_db()
    assert (lead.contact_id, lead.company_id) == (contact.id, company.id)


async def test_a_lead_converted_once_is_not_converted_again(db):
    _, lead_stages, _, _ = await _lead_world()
    await add_rule(lead_stages["offer"], "convert_lead", {})
    lead = await element_service.create_element("lead", {"title": "Twice"}, stage_id=lead_stages["offer"].id, actor=SYSTEM)
    first = await one_run("lead", lead.id)
    assert first.status == "succeeded"

    await element_service.move_element("lead", lead.id, lead_stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("lead", lead.id, 2)
    assert runs[1].status == "failed"
    assert runs[1].error == f"the lead was already converted into deal {first.outputs['deal_id']}"
    assert await Deal.all().count() == 1


async def test_convert_run_delivered_twice_makes_one_deal(db, clock_control, worker_paused):
    _, lead_stages, _, _ = await _lead_world()
    await add_rule(lead_stages["offer"], "convert_lead", {}, timing=LATER)
    lead = await element_service.create_element("lead", {"title": "dup"}, stage_id=lead_stages["offer"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_type="lead", element_id=lead.id)

    assert sorted(await deliver_three_times(run, clock_control), key=str) == [None, None, "succeeded"]
    assert await delivered_again(run) is None

    assert await Deal.all().count() == 1
    assert await Contact.all().count() == 1
    await run.refresh_from_db()
    assert run.outputs["deal_id"] == (await Deal.first()).id


async def test_convert_lead_params_are_checked_at_save(db):
    _, lead_stages, _, _ = await _lead_world()
    _, deal_stages = await make_pipeline("deal", name="Other")
    assert await refused(deal_stages["offer"], "convert_lead", {}) == {
        "params": "this rule works on leads: put it on a stage of a lead pipeline"}
    leads = (await lead_stages["new"].pipeline).id
    assert await refused(lead_stages["new"], "convert_lead", {"pipeline": leads}) == {"params.pipeline": "choose a deal pipeline"}
    assert await refused(lead_stages["new"], "convert_lead", {
        "create_deal": False, "create_contact": False, "create_company": False,
    }) == {"params": "choose what to create: a deal, a contact, a company, or several"}
    assert await refused(lead_stages["new"], "convert_lead", {"email_field": "amount"}) == {
        "params.email_field": "'amount' is not a text field of a lead"}


async def test_create_contact_for_lead_links_a_new_contact_and_marks_the_lead_repeat(db):
    ann = await make_user("Ann")
    await CustomField.create(entity_type="lead", code="email", name="Email", type="string")
    await CustomField.create(entity_type="lead", code="mobile", name="Mobile", type="string")
    _, stages = await make_pipeline("lead", name="Leads")
    await add_rule(stages["offer"], "create_contact_for_lead", {"phone_field": "mobile"})
    lead = await element_service.create_element(
        "lead", {"title": "Julia Klein", "email": "julia@mail.example", "mobile": "+49 30 5550 4242", "responsible": ann.id},
        stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("lead", lead.id)

    assert run.status == "succeeded", run.error
    contact = await Contact.get(id=run.outputs["contact_id"])
    assert (contact.name, contact.emails, contact.phones, contact.responsible_id) == (
        "Julia Klein", work("julia@mail.example"), work("+493055504242"), ann.id)  # a landline: work
    await lead.refresh_from_db()
    assert (lead.contact_id, lead.is_repeat) == (contact.id, True)
    assert {a.field for a in await AuditEntry.filter(element_type="lead", element_id=lead.id, rule_run_id=run.id)} == {
        "contact", "is_repeat"}
    assert await delivered_again(run) is None
    assert await Contact.all().count() == 1


async def test_create_contact_for_a_lead_that_has_one_fails_clearly(db):
    _, stages = await make_pipeline("lead", name="Leads")
    await add_rule(stages["offer"], "create_contact_for_lead", {})
    existing = await Contact.create(name="Already")
    lead = await element_service.create_element("lead", {"title": "L", "contact": existing.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    run = await one_run("lead", lead.id)

    assert run.status == "failed"
    assert run.error == f"the lead already has a contact (contact {existing.id}): no contact created"
    assert await Contact.all().count() == 1 and not (await Lead.get(id=lead.id)).is_repeat


# ---------------------------------------------------------------- change company, change contact


async def test_change_company_and_contact_modify_the_linked_records(db):
    ann = await make_user("Ann")
    await CustomField.create(entity_type="company", code="customer_since", name="Customer since", type="date")
    await CustomField.create(entity_type="contact", code="newsletter", name="Newsletter", type="bool")
    _, stages = await make_pipeline()
    await add_rule(stages["won"], "change_company", {"fields": {"customer_since": "{{today}}", "phone": "030 5550 0101"}})
    await add_rule(stages["won"], "change_contact", {"fields": {"newsletter": True, "email": "new@acme.example",
                                                                "name": "{{deal.contact.name}} (customer)"}})
    company = await Company.create(name="Acme", phones=[{"value": "+493055500100", "type": "work"},
                                                         {"value": "+493055500109", "type": "other"}])
    first = await Contact.create(name="First", emails=[{"value": "old@acme.example", "type": "home"}])
    second = await Contact.create(name="Second")
    deal = await element_service.create_element("deal", {"title": "Acme", "company": company.id, "responsible": ann.id},
                                                stage_id=stages["won"].id, contact_ids=[first.id, second.id], actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)

    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    await company.refresh_from_db()
    assert company.custom == {"customer_since": clock.utcnow().date().isoformat()}
    # The first number's value changes (in E.164, read as a German number), its type and the others stay.
    assert company.phones == [{"value": "+493055500101", "type": "work"}, {"value": "+493055500109", "type": "other"}]
    await first.refresh_from_db()
    assert (first.name, first.emails, first.custom) == ("First (customer)", [{"value": "new@acme.example", "type": "home"}], {"newsletter": True})
    assert (await Contact.get(id=second.id)).name == "Second"
    audit = await AuditEntry.filter(element_type="contact", element_id=first.id).order_by("id")
    assert sorted((a.field, a.rule_run_id, a.actor_id) for a in audit) == [
        ("email", runs[1].id, ann.id), ("name", runs[1].id, ann.id), ("newsletter", runs[1].id, ann.id)]


async def test_change_contact_on_a_lead_uses_its_contact(db):
    _, stages = await make_pipeline("lead", name="Leads")
    await add_rule(stages["offer"], "change_contact", {"fields": {"phone": "+43 1 5550 7788"}})
    contact = await Contact.create(name="Eva")
    lead = await element_service.create_element("lead", {"title": "L", "contact": contact.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    assert (await one_run("lead", lead.id)).status == "succeeded"
    assert (await Contact.get(id=contact.id)).phones == [{"value": "+43155507788", "type": "work"}]  # a new first entry


async def test_change_company_without_a_linked_company_fails_clearly(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_company", {"fields": {"name": "New name"}})
    await add_rule(stages["offer"], "change_contact", {"fields": {"name": "New name"}})
    deal = await element_service.create_element("deal", {"title": "Alone"}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)

    assert [(r.status, r.error) for r in runs] == [
        ("failed", "the deal has no linked company to change"), ("failed", "the deal has no linked contact to change")]


async def test_change_company_and_contact_fields_are_type_checked_at_save(db):
    await CustomField.create(entity_type="company", code="customer_since", name="Customer since", type="date")
    await CustomField.create(entity_type="deal", code="deal_only", name="Deal only", type="string")
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "change_company", {"fields": {
        "customer_since": "soon", "deal_only": "x", "email": "not-an-email", "responsible": 999, "name": "",
    }})
    assert errors == {
        "params.fields.customer_since": "must be a date as YYYY-MM-DD, not 'soon'",
        "params.fields.deal_only": "company has no field 'deal_only'",
        "params.fields.email": "not a valid email address: 'not-an-email'",
        "params.fields.responsible": "user 999 does not exist",
        "params.fields.name": "must not be empty",
    }
    assert await refused(stages["offer"], "change_contact", {"fields": {"customer_since": "2024-01-01"}}) == {
        "params.fields.customer_since": "contact has no field 'customer_since'"}
    assert set(await refused(stages["offer"], "change_contact", {"fields": {}})) == {"params.fields"}


# ---------------------------------------------------------------- activity stream


async def test_feed_post_reaches_named_users_and_roles(db):
    ann = await make_user("Ann", role="manager")
    bob = await make_user("Bob")
    outsider = await make_user("Outsider")
    _, stages = await make_pipeline()
    await add_rule(stages["won"], "feed_post", {"title": "Won: {{deal.title}}", "text": "Well done, {{deal.responsible.name}}!",
                                                "users": [bob.id], "roles": ["manager"]})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": bob.id}, stage_id=stages["won"].id, actor=SYSTEM)

    run = await one_run("deal", deal.id)

    assert run.status == "succeeded", run.error
    post = await FeedPost.get(id=run.outputs["post_id"])
    assert (post.title, post.body, post.author_id, post.to_everyone) == ("Won: Acme", "Well done, Bob!", bob.id, False)
    assert sorted(r.user_id for r in await FeedRecipient.filter(post_id=post.id)) == [ann.id, bob.id]
    assert [p.id for p in (await feed.list_visible(ann.id, actor=SYSTEM)).items] == [post.id]
    assert (await feed.list_visible(outsider.id, actor=SYSTEM)).items == []
    [event] = await Event.filter(kind="feed", element_id=deal.id)
    assert sorted(event.audience) == [ann.id, bob.id] and event.payload["title"] == "Won: Acme"


async def test_feed_post_to_everyone_is_seen_by_users_who_join_later(db):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    await add_rule(stages["won"], "feed_post", {"text": "We won {{deal.title}}", "everyone": True, "sender": ann.id})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["won"].id, actor=SYSTEM)
    run = await one_run("deal", deal.id)
    newcomer = await make_user("Newcomer")

    assert [p.body for p in (await feed.list_visible(newcomer.id, actor=SYSTEM)).items] == ["We won Acme"]
    assert run.outputs["post_id"] == (await FeedPost.get(rule_run_id=run.id)).id


async def test_feed_post_run_delivered_twice_posts_once(db, clock_control, worker_paused):
    _, stages = await make_pipeline()
    await add_rule(stages["won"], "feed_post", {"text": "once", "everyone": True}, timing=LATER)
    deal = await element_service.create_element("deal", {"title": "dup"}, stage_id=stages["won"].id, actor=SYSTEM)
    [run] = await RuleRun.filter(element_id=deal.id)

    assert sorted(await deliver_three_times(run, clock_control), key=str) == [None, None, "succeeded"]
    assert await delivered_again(run) is None

    assert await FeedPost.all().count() == 1


async def test_feed_post_params_need_recipients(db):
    _, stages = await make_pipeline()
    assert await refused(stages["won"], "feed_post", {"text": "x"}) == {
        "params": "post to everyone, or name users or roles (admin, manager, employee)"}
    assert set(await refused(stages["won"], "feed_post", {"text": "", "everyone": True})) == {"params.text"}


# ---------------------------------------------------------------- delete element


async def test_delete_element_deletes_the_deal_cancels_its_runs_and_keeps_the_log(db):
    _, stages = await make_pipeline()
    await add_rule(stages["lost"], "add_comment", {"text": "goodbye"}, key="bye")
    await add_rule(stages["lost"], "delete_element", {}, key="delete", lane="after_previous")
    await add_rule(stages["lost"], "add_comment", {"text": "never"}, key="never", lane="after_previous")
    await add_rule(stages["lost"], "add_comment", {"text": "tomorrow"}, key="later", timing=LATER)
    deal = await element_service.create_element("deal", {"title": "doomed"}, stage_id=stages["lost"].id, actor=SYSTEM)

    await wait_until(lambda: _gone(deal.id), what="the deal to be deleted")
    runs = await wait_for_runs("deal", deal.id, 4)

    assert {r.rule_key: r.status for r in runs} == {
        "bye": "succeeded", "delete": "succeeded", "never": "cancelled", "later": "cancelled"}
    assert all("deleted by the rule" in r.reason for r in runs if r.status == "cancelled")
    entries = [(e.kind, e.text) for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id).order_by("id")]
    assert entries == [("comment", "goodbye"), ("history", "Deleted by the rule 'Delete element'")]
    assert [s.status for s in await StageRun.filter(element_type="deal", element_id=deal.id)] == ["deleted"]


async def _gone(deal_id: int) -> bool:
    return not await Deal.exists(id=deal_id)


async def test_delete_element_deletes_a_lead(db):
    _, stages = await make_pipeline("lead", name="Leads")
    await add_rule(stages["lost"], "delete_element", {})
    lead = await element_service.create_element("lead", {"title": "junk"}, stage_id=stages["lost"].id, actor=SYSTEM)

    run = await one_run("lead", lead.id)

    assert run.status == "succeeded" and not await Lead.exists(id=lead.id)

