"""SPEC §4 action catalogue: each action saved through the rules service and run by the worker."""

import json
import re
import string
from datetime import timedelta

import pytest

from server import clock
from server.actor import SYSTEM
from server.errors import ValidationFailed
from server.models import AuditEntry, CustomField, Deal, RuleRun, StageRun, Task, TimelineEntry
from server.rules.actions.generate_code import ACTION as GENERATE_CODE
from server.rules.actions.generate_code import GenerateCodeParams
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

pytestmark = pytest.mark.production_backend


async def refused(stage, action_type, params, **values) -> dict[str, str]:
    """Save a rule that must be refused; the field → message map of the refusal."""
    with pytest.raises(ValidationFailed) as failure:
        await add_rule(stage, action_type, params, **values)
    return {e.field: e.message for e in failure.value.errors}


async def timeline(deal_id: int, kind: str) -> list[TimelineEntry]:
    return await TimelineEntry.filter(element_type="deal", element_id=deal_id, kind=kind)


async def test_unknown_action_type_is_refused(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "send_fax", {})
    assert errors["action_type"].startswith("unknown action type 'send_fax'; one of: activity, add_comment, add_to_exceptions, book_resource, cancel_booking, change_company")


# ---------------------------------------------------------------- add comment


async def test_add_comment_is_attributed_to_its_author_and_run(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Offer sent for {{deal.title}}", "author": bob.id})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded"
    [comment] = await timeline(deal.id, "comment")
    assert comment.text == "Offer sent for Acme"
    assert comment.author_id == bob.id
    assert comment.rule_run_id == run.id
    assert run.outputs == {"comment_id": comment.id}


async def test_add_comment_without_author_is_written_by_the_run_as_user(db):
    ann, carl = await make_user("Ann"), await make_user("Carl")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "by the responsible"}, key="plain")
    await add_rule(stages["offer"], "add_comment", {"text": "on Carl's behalf"}, key="as_carl", run_as_id=carl.id)
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    await wait_for_runs("deal", deal.id, 2)

    authors = {c.text: c.author_id for c in await timeline(deal.id, "comment")}
    assert authors == {"by the responsible": ann.id, "on Carl's behalf": carl.id}


async def test_add_comment_params_are_checked_at_save(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "add_comment", {"text": "", "author": 999})
    assert set(errors) == {"params.text"}
    errors = await refused(stages["offer"], "add_comment", {"text": "hi", "author": 999})
    assert errors == {"params.author": "user 999 does not exist"}
    errors = await refused(stages["offer"], "add_comment", {"text": "{{ deal.title"})
    assert errors["params.text"].startswith("template error on line 1")


# ---------------------------------------------------------------- history entry


async def test_history_entry_is_an_information_entry(db):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "history_entry", {"text": "Offer stage reached by {{deal.responsible.name}}"})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    [entry] = await timeline(deal.id, "history")
    assert entry.text == "Offer stage reached by Ann"
    assert entry.author_id == ann.id and entry.rule_run_id == run.id
    assert run.outputs == {"entry_id": entry.id}
    assert await timeline(deal.id, "comment") == []


# ---------------------------------------------------------------- modify element


async def test_modify_element_sets_several_fields_with_an_audit_trail(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    await CustomField.create(entity_type="deal", code="tier", name="Tier", type="select", options=["gold", "silver"])
    await CustomField.create(entity_type="deal", code="seats", name="Seats", type="number")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {
        "title": "{{deal.title}} (offer)", "amount": "7500.50", "close_date": "2024-06-30",
        "tier": "gold", "seats": 25, "responsible": bob.id,
    }})
    deal = await element_service.create_element("deal", {"title": "Acme", "amount": 5000, "responsible": ann.id},
                                                stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded", run.error
    await deal.refresh_from_db()
    assert deal.title == "Acme (offer)"
    assert str(deal.amount) == "7500.50"
    assert deal.close_date.isoformat() == "2024-06-30"
    assert deal.responsible_id == bob.id
    assert deal.custom == {"tier": "gold", "seats": "25"}
    audit = {a.field: a for a in await AuditEntry.filter(element_type="deal", element_id=deal.id, rule_run_id=run.id)}
    assert set(audit) == {"title", "amount", "close_date", "tier", "seats", "responsible"}
    assert json.loads(audit["title"].old_value) == "Acme" and json.loads(audit["title"].new_value) == "Acme (offer)"
    assert json.loads(audit["amount"].old_value) == "5000.00" and json.loads(audit["amount"].new_value) == "7500.50"
    assert json.loads(audit["tier"].old_value) is None and json.loads(audit["tier"].new_value) == "gold"
    assert all(a.actor_id == ann.id for a in audit.values())


async def test_modify_element_leaves_unchanged_fields_out_of_the_audit(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {"currency": "eur", "amount": 100}})
    deal = await element_service.create_element("deal", {"title": "Acme", "amount": 50}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.outputs == {"changed": ["amount"]}
    assert [a.field for a in await AuditEntry.filter(element_id=deal.id, rule_run_id=run.id)] == ["amount"]


async def test_modify_element_refuses_unknown_fields_and_wrong_types_at_save(db):
    await CustomField.create(entity_type="deal", code="tier", name="Tier", type="select", options=["gold", "silver"])
    await CustomField.create(entity_type="deal", code="seats", name="Seats", type="number")
    await CustomField.create(entity_type="lead", code="lead_only", name="Lead only", type="string")
    _, stages = await make_pipeline()

    errors = await refused(stages["offer"], "modify_element", {"fields": {
        "colour": "red", "lead_only": "x", "amount": "lots", "close_date": "next week", "tier": "bronze",
        "seats": "many", "responsible": 999, "currency": "euro", "title": "{{ deal.title",
    }, "run_as": 999})

    assert errors == {
        "params.fields.colour": "deal has no field 'colour'",
        "params.fields.lead_only": "deal has no field 'lead_only'",
        "params.fields.amount": "must be a number, not 'lots'",
        "params.fields.close_date": "must be a date as YYYY-MM-DD, not 'next week'",
        "params.fields.tier": "must be one of gold, silver",
        "params.fields.seats": "must be a number, not 'many'",
        "params.fields.responsible": "user 999 does not exist",
        "params.fields.currency": "must be a three-letter currency code such as EUR",
        "params.fields.title": errors["params.fields.title"],
        "params.run_as": "user 999 does not exist",
    }
    assert errors["params.fields.title"].startswith("template error on line 1")


async def test_modify_element_refuses_an_empty_title_at_save(db):
    # SPEC §2: bad params are refused at save, never at run time.
    _, stages = await make_pipeline()
    try:
        await add_rule(stages["offer"], "modify_element", {"fields": {"title": ""}})
    except ValidationFailed as failure:
        fields = {e.field for e in failure.errors}
    else:
        fields = set()
    assert fields == {"params.fields.title"}, "a Modify element rule emptying the title was saved"


async def test_modify_element_as_another_user_audits_that_user(db):
    ann, bob = await make_user("Ann"), await make_user("Bob")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "modify_element", {"fields": {"amount": 10}, "run_as": bob.id})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    [audit] = await AuditEntry.filter(element_id=deal.id, rule_run_id=run.id)
    assert (audit.field, audit.actor_id) == ("amount", bob.id)


async def test_modify_element_needs_at_least_one_field(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "modify_element", {"fields": {}})
    assert set(errors) == {"params.fields"}


# ---------------------------------------------------------------- change stage


async def test_change_stage_moves_the_element_and_starts_the_target_stage(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "change_stage", {"stage": stages["invoice"].id})
    await add_rule(stages["invoice"], "history_entry", {"text": "invoice stage rules ran"})
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)

    assert [(r.action_type, r.status) for r in runs] == [("change_stage", "succeeded"), ("history_entry", "succeeded")]
    assert runs[0].outputs == {"stage": "invoice"}
    await deal.refresh_from_db()
    assert deal.stage_id == stages["invoice"].id
    stage_runs = await StageRun.filter(element_type="deal", element_id=deal.id).order_by("id")
    assert [(s.stage_id, s.status) for s in stage_runs] == [(stages["offer"].id, "left"), (stages["invoice"].id, "active")]
    assert stage_runs[1].caused_by_rule_run_id == runs[0].id


async def test_change_stage_target_must_be_another_stage_of_the_pipeline(db):
    _, stages = await make_pipeline()
    _, other = await make_pipeline(name="Renewals")
    _, lead_stages = await make_pipeline("lead", name="Leads")

    for outside in (other["invoice"].id, lead_stages["new"].id, 99_999):
        errors = await refused(stages["offer"], "change_stage", {"stage": outside})
        assert errors == {"params.stage": "the target stage must be a stage of this pipeline"}
    errors = await refused(stages["offer"], "change_stage", {"stage": stages["offer"].id})
    assert errors == {"params.stage": "the target stage must differ from the stage the rule is on"}
    errors = await refused(stages["offer"], "change_stage", {"stage": stages["won"].id, "run_as": 999})
    assert errors == {"params.run_as": "user 999 does not exist"}
    errors = await refused(stages["offer"], "change_stage", {})
    assert set(errors) == {"params.stage"}


# ---------------------------------------------------------------- generate code


async def test_generate_code_gives_a_code_of_the_chosen_length_and_alphabet(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True, "upper": False}, key="pin")
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded"
    assert re.fullmatch(r"[0-9]{6}", run.outputs["code"])


@pytest.mark.parametrize(
    ("choice", "alphabet"),
    [
        ({"digits": True, "upper": False}, string.digits),
        ({"digits": False, "upper": False, "lower": True}, string.ascii_lowercase),
        ({}, string.digits + string.ascii_uppercase),
        ({"digits": False, "upper": False, "special": True}, "!#$%&*+-=?@^_"),
    ],
)
async def test_generated_codes_respect_length_and_alphabet_over_many_codes(choice, alphabet):
    params = GenerateCodeParams(length=12, **choice)
    codes = [(await GENERATE_CODE.execute(None, params)).outputs["code"] for _ in range(500)]  # type: ignore[arg-type]

    assert all(len(code) == 12 for code in codes)
    used = set("".join(codes))
    assert used <= set(alphabet)
    assert used == set(alphabet)  # 6000 draws: every character of a ≤36-letter alphabet shows up
    assert len(set(codes)) == len(codes)


async def test_generate_code_params_are_checked_at_save(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "generate_code", {"digits": False, "upper": False})
    assert errors == {"params": "choose at least one alphabet: digits, lower, upper or special"}
    assert set(await refused(stages["offer"], "generate_code", {"length": 3})) == {"params.length"}
    assert set(await refused(stages["offer"], "generate_code", {"length": 65})) == {"params.length"}
    assert set(await refused(stages["offer"], "generate_code", {"emoji": True})) == {"params.emoji"}


# ---------------------------------------------------------------- wait


async def test_wait_params_need_a_number_of_days(db):
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "wait", {})
    assert errors == {"params": "give the number of days to wait (or days before a date field)"}
    errors = await refused(stages["offer"], "wait", {"before_field": "close_date"})
    assert set(errors) == {"params"}
    assert set(await refused(stages["offer"], "wait", {"days": -1})) == {"params.days"}
    assert set(await refused(stages["offer"], "wait", {"days": 3651})) == {"params.days"}
    assert set(await refused(stages["offer"], "wait", {"days": 2, "description": "{% if %}"})) == {"params.description"}
    await add_rule(stages["offer"], "wait", {"days": 3, "before_field": "close_date", "description": "reply"})


async def test_wait_before_a_field_that_is_no_date_field_is_refused_at_save(db):
    # A typo ("close_dat") or a text field ("title") would silently wait plain `days` days.
    _, stages = await make_pipeline()
    for bad in ("close_dat", "title"):
        try:
            await add_rule(stages["offer"], "wait", {"days": 3, "before_field": bad}, key=f"wait_{bad}")
        except ValidationFailed as failure:
            fields = {e.field for e in failure.errors}
        else:
            fields = set()
        assert fields == {"params.before_field"}, f"a Wait until days before '{bad}' was saved without complaint"


async def test_wait_holds_until_customer_activity(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "wait", {"days": 3, "description": "the signed offer"})
    await add_rule(stages["offer"], "add_comment", {"text": "ended by {{rules.wait1.ended_by}}"}, lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "Acme"}, stage_id=stages["offer"].id, actor=SYSTEM)

    waiting, follower = await wait_for_runs("deal", deal.id, 1, statuses=("waiting",))
    assert follower.status == "scheduled" and follower.due_at is None
    assert waiting.due_at > clock.utcnow() + timedelta(days=2, hours=23)
    await deal.refresh_from_db()
    assert deal.waiting_for_customer
    assert [e.text for e in await timeline(deal.id, "history")] == ["Waiting for the customer: the signed offer"]

    await element_service.record_customer_activity("deal", deal.id, kind="email", text="signed!", actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, 2)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert runs[0].outputs["ended_by"] == "activity"
    await deal.refresh_from_db()
    assert not deal.waiting_for_customer
    assert [c.text for c in await timeline(deal.id, "comment")] == ["ended by activity"]


# ---------------------------------------------------------------- task


async def test_task_defaults_to_the_element_responsible_with_a_deadline(db):
    ann, bob, carl = await make_user("Ann"), await make_user("Bob"), await make_user("Carl")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "task", {
        "title": "Call {{deal.contact.name or deal.title}}", "description": "About {{deal.amount}} EUR",
        "participants": [bob.id, carl.id], "deadline_days": 3, "priority": "high",
    })
    before = clock.utcnow()
    deal = await element_service.create_element("deal", {"title": "Acme", "amount": 900, "responsible": ann.id},
                                                stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded"
    task = await Task.get(rule_run_id=run.id)
    assert run.outputs == {"task_id": task.id}
    assert (task.title, task.description, task.priority, task.status) == ("Call Acme", "About 900.00 EUR", "high", "open")
    assert task.responsible_id == ann.id
    assert task.creator_id == ann.id
    assert task.participants == [bob.id, carl.id]
    assert (task.element_type, task.element_id) == ("deal", deal.id)
    assert before + timedelta(days=3) <= task.deadline <= clock.utcnow() + timedelta(days=3)


async def test_task_named_responsible_and_creator_win(db):
    ann, bob, carl = await make_user("Ann"), await make_user("Bob"), await make_user("Carl")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "task", {"title": "Check", "responsible": bob.id, "creator": carl.id})
    deal = await element_service.create_element("deal", {"title": "Acme", "responsible": ann.id}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    task = await Task.get(rule_run_id=run.id)
    assert (task.responsible_id, task.creator_id, task.deadline) == (bob.id, carl.id, None)


async def test_task_people_must_exist(db):
    ann = await make_user("Ann")
    _, stages = await make_pipeline()
    errors = await refused(stages["offer"], "task", {
        "title": "Call", "responsible": 901, "creator": 902, "participants": [ann.id, 903],
    })
    assert errors == {
        "params.responsible": "user 901 does not exist",
        "params.creator": "user 902 does not exist",
        "params.participants.1": "user 903 does not exist",
    }


async def test_task_params_are_checked_at_save(db):
    _, stages = await make_pipeline()
    assert set(await refused(stages["offer"], "task", {})) == {"params.title"}
    assert set(await refused(stages["offer"], "task", {"title": "x", "deadline_days": -1})) == {"params.deadline_days"}
    assert set(await refused(stages["offer"], "task", {"title": "x", "priority": "urgent"})) == {"params.priority"}
    assert await Deal.all().count() == 0
    assert await RuleRun.all().count() == 0


async def test_a_timing_anchored_on_a_field_that_is_no_date_is_refused_at_save(db):
    _, stages = await make_pipeline()
    with pytest.raises(ValidationFailed) as failure:
        await add_rule(stages["offer"], "add_comment", {"text": "x"},
                       timing={"kind": "before_field", "field": "close_dat", "amount": 1, "unit": "days"})
    assert [e.field for e in failure.value.errors] == ["timing.field"]
    await add_rule(stages["offer"], "add_comment", {"text": "x"},
                   timing={"kind": "before_field", "field": "close_date", "amount": 1, "unit": "days"})


async def test_descriptions_name_people_and_stages(db):
    from server.rules.actions import registry
    from server.rules.actions.base import load_names
    from tests.support import make_user

    _, stages = await make_pipeline()
    maria, tom = await make_user("Maria"), await make_user("Tom")
    names = await load_names()
    move = registry()["change_stage"]
    assert move.describe(move.Params(stage=stages["won"].id), names) == "Moves the element to “Won”"
    notify = registry()["notification"]
    described = notify.describe(notify.Params(text="Hi", users=[maria.id, tom.id], roles=["manager"]), names)
    assert described == "Notifies Maria and Tom, every manager: “Hi”"
    assert move.describe(move.Params(stage=stages["won"].id)) == f"Moves the element to stage {stages['won'].id}"


# SPEC §4, the action catalogue: each row and the action types that are it.
SPEC_CATALOGUE = {
    "Add to exceptions": ("add_to_exceptions",), "Add comment": ("add_comment",), "Book a resource": ("book_resource",),
    "Task": ("task",), "Activity": ("activity",), "History entry": ("history_entry",),
    "Schedule call / meeting": ("schedule_call", "schedule_meeting"), "Modify element": ("modify_element",),
    "Change stage": ("change_stage",), "Control": ("control",), "Wait": ("wait",),
    "Change responsible": ("change_responsible",), "Send email / SMS": ("send_email", "send_sms"),
    "Create from (convert)": ("convert_lead",), "Change company / Change contact": ("change_company", "change_contact"),
    "Cancel booking": ("cancel_booking",), "Generate code": ("generate_code",), "Notification": ("notification",),
    "Create contact for lead": ("create_contact_for_lead",), "Activity stream message": ("feed_post",),
    "Create CRM document": ("create_document",), "Delete element": ("delete_element",),
}


def test_every_row_of_the_action_catalogue_is_an_action_type():
    from server.rules.actions import registry

    actions = registry()
    missing = {row: keys for row, keys in SPEC_CATALOGUE.items() if not all(k in actions for k in keys)}
    assert missing == {}
