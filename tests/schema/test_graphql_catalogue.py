"""Issue 3 through the API, as a new user would try it: every in-CRM action configured with
`createRule`, an element moved there with `moveDeal`/`moveLead`, the effect read back through
GraphQL (activities, notifications, feed, the calendar feed URL) with its run succeeded."""

from datetime import UTC, datetime
from typing import Any

import icalendar
import pytest

from server.actor import SYSTEM
from server.models import Company, Contact, Deal, DealContact, Lead, Pipeline, RuleRun, Stage
from server.rules.actions import registry
from tests.support import make_pipeline, make_token, make_user, wait_until
from tests.support.api import Api
from tests.support.clients import work
from web import rule_form

pytestmark = pytest.mark.production_backend

CREATE_RULE = """mutation($s: ID!, $input: RuleInput!) { createRule(stageId: $s, input: $input) {
  __typename ... on ValidationError { errors { field message } } } }"""
MOVE = {"deal": "mutation($id: ID!, $s: ID!) { moveDeal(id: $id, stageId: $s) { __typename } }",
        "lead": "mutation($id: ID!, $s: ID!) { moveLead(id: $id, stageId: $s) { __typename } }"}


async def rule_then_move(api: Api, admin: str, element_type: str, element_id: int, stage: Stage,
                         action_type: str, params: dict[str, Any]) -> None:
    created = await api.as_(admin, CREATE_RULE, s=str(stage.id), input={"actionType": action_type, "params": params})
    assert created["createRule"]["__typename"] == "Rule", created
    moved = await api.as_(admin, MOVE[element_type], id=str(element_id), s=str(stage.id))
    assert moved[f"move{element_type.title()}"]["__typename"] in ("Deal", "Lead")
    async def settled() -> list[RuleRun] | None:
        runs = await RuleRun.filter(element_type=element_type, element_id=element_id).order_by("id")
        return runs if all(r.status not in ("scheduled", "queued", "running") for r in runs) else None

    runs = await wait_until(settled, what=f"the {action_type} run")
    assert [r.status for r in runs if r.action_type == action_type] == ["succeeded"], [(r.status, r.error) for r in runs]


async def test_action_types_give_every_action_with_the_widgets_the_admin_form_shows(api: Api) -> None:
    _, admin = await make_token("admin")
    data = await api.as_(admin, "{ actionTypes { key group params { name type required choices itemType } } }")
    listed = {a["key"]: {p["name"]: p for p in a["params"]} for a in data["actionTypes"]}
    assert set(listed) == set(registry())
    for key, action in registry().items():  # one reader: the admin form asks the same one
        assert [(p["name"], p["type"], p["choices"]) for p in listed[key].values()] == [
            (f.name, f.kind, f.choices) for f in rule_form.param_fields(action)], key
    # optional ids and numbers are their widget, not "json" (the API used to say json)
    assert listed["add_comment"]["author"] == {"name": "author", "type": "user", "required": False, "choices": [],
                                               "itemType": None}
    assert listed["activity"]["reminder_minutes"]["type"] == "int"
    assert listed["convert_lead"]["pipeline"]["type"] == "pipeline"
    assert listed["task"]["priority"]["choices"] == ["low", "normal", "high"]
    assert listed["notification"]["roles"]["choices"] == ["admin", "manager", "employee"]
    assert listed["activity"]["responsibles"]["itemType"] == "int"


async def test_a_meeting_rule_lands_in_the_calendar_and_completes_when_the_deal_moves_on(api: Api) -> None:
    _, stages = await make_pipeline()
    owner, owner_token = await make_token("employee", "Owner")
    _, admin = await make_token("admin")
    deal = await Deal.create(title="Kick-off", pipeline_id=stages["new"].pipeline_id, stage_id=stages["new"].id,
                             responsible_id=owner.id)
    await rule_then_move(api, admin, "deal", deal.id, stages["offer"], "schedule_meeting", {
        "subject": "Kick-off for {{deal.title}}", "start_in": 2, "start_unit": "hours", "duration_minutes": 45,
        "reminder_minutes": 15, "auto_complete": True})

    mine = await api.as_(owner_token, """{ activities { id kind subject startAt endAt completed }
        unreadNotificationCount notifications { nodes { id kind text } } calendarFeed { url } }""")
    [meeting] = mine["activities"]
    assert meeting["kind"] == "meeting" and meeting["subject"] == "Kick-off for Kick-off" and not meeting["completed"]
    assert mine["unreadNotificationCount"] == 1 and mine["notifications"]["nodes"][0]["kind"] == "meeting"
    url = mine["calendarFeed"]["url"]
    assert url.startswith("http://crm.test/calendar/") and url.endswith(".ics")

    def events(text: bytes) -> list[Any]:
        return [c for c in icalendar.Calendar.from_ical(text).walk("VEVENT")]

    feed = await api.get(url.removeprefix("http://crm.test"))
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    [event] = events(feed.content)
    start = datetime.fromisoformat(meeting["startAt"]).astimezone(UTC)
    assert event.decoded("dtstart") == start and event["dtstart"].to_ical().decode().endswith("Z")
    assert (event.decoded("dtend") - event.decoded("dtstart")).total_seconds() == 45 * 60
    assert str(event["summary"]) == "Kick-off for Kick-off"
    uid, sequence = str(event["uid"]), int(event["sequence"])

    read = await api.as_(owner_token, """mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) {
        ... on MarkedRead { unreadCount notifications { read } } } }""",
                         ids=[mine["notifications"]["nodes"][0]["id"]])
    assert read["markNotificationsRead"] == {"unreadCount": 0, "notifications": [{"read": True}]}

    await api.as_(admin, MOVE["deal"], id=str(deal.id), s=str(stages["invoice"].id))
    after = await api.as_(owner_token, "{ activities { completed completedAt } }")
    assert after["activities"][0]["completed"] is True
    [event] = events((await api.get(url.removeprefix("http://crm.test"))).content)
    # VEVENT has no COMPLETED status (RFC 5545 3.8.1.11): the same event, updated, marked done
    assert str(event["uid"]) == uid and int(event["sequence"]) > sequence
    assert str(event["summary"]) == "Done: Kick-off for Kick-off"
    assert (await api.get("/calendar/not-the-secret.ics")).status_code == 404


async def test_every_other_in_crm_action_through_the_api(api: Api) -> None:
    _, stages = await make_pipeline()
    sales = await Pipeline.get(id=stages["new"].pipeline_id)
    _, lead_stages = await make_pipeline("lead", "Leads")
    boss = await make_user("Boss", role="manager")
    owner, owner_token = await make_token("employee", "Owner")
    from server.models import User

    await User.filter(id=owner.id).update(supervisor_id=boss.id)
    helper = await make_user("Helper")
    _, admin = await make_token("admin")
    company = await Company.create(name="Acme")
    contact = await Contact.create(name="Carla", emails=work("carla@acme.example"))

    async def new_deal(title: str) -> Deal:
        deal = await Deal.create(title=title, pipeline_id=sales.id, stage_id=stages["new"].id,
                                 responsible_id=owner.id, company_id=company.id)
        await DealContact.create(deal_id=deal.id, contact_id=contact.id)
        return deal

    async def new_lead(title: str, **custom: Any) -> Lead:
        return await Lead.create(title=title, pipeline_id=lead_stages["new"].pipeline_id,
                                 stage_id=lead_stages["new"].id, responsible_id=owner.id, custom=custom)

    async def fresh_stage(base: dict[str, Stage], code: str) -> Stage:
        return await Stage.create(pipeline_id=base["new"].pipeline_id, code=code, name=code.title(), position=9)

    # Activity and Schedule call: in the responsible's activities
    deal = await new_deal("Calls")
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "act"), "activity",
                         {"subject": "Prepare offer", "start_in": 1, "start_unit": "days"})
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "call"), "schedule_call",
                         {"subject": "Call {{deal.title}}", "start_in": 30, "start_unit": "minutes"})
    listed = await api.as_(owner_token, "{ activities { kind subject } }")
    assert sorted((a["kind"], a["subject"]) for a in listed["activities"]) == [
        ("activity", "Prepare offer"), ("call", "Call Calls")]

    # Control: the supervisor is told
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "ctrl"), "control",
                         {"message": "{{deal.title}} needs a look"})
    from server.services.tokens import create_token

    _, boss_token = await create_token(SYSTEM, user_id=boss.id, name="boss")
    told = await api.as_(boss_token, "{ notifications { nodes { kind text } } }")
    assert {"kind": "control", "text": "Calls needs a look"} in told["notifications"]["nodes"]

    # Notification to a role, Activity stream message to everyone
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "note"), "notification",
                         {"text": "Heads up: {{deal.title}}", "roles": ["manager"]})
    told = await api.as_(boss_token, "{ notifications { nodes { text } } }")
    assert {"text": "Heads up: Calls"} in told["notifications"]["nodes"]
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "post"), "feed_post",
                         {"title": "News", "text": "{{deal.title}} moves", "everyone": True})
    feed = await api.as_(owner_token, "{ feed { nodes { title body toEveryone } } }")
    assert feed["feed"]["nodes"] == [{"title": "News", "body": "Calls moves", "toEveryone": True}]

    # Change responsible, Change company, Change contact
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "hand"), "change_responsible",
                         {"users": [helper.id]})
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "co"), "change_company",
                         {"fields": {"name": "Acme GmbH"}})
    await rule_then_move(api, admin, "deal", deal.id, await fresh_stage(stages, "cn"), "change_contact",
                         {"fields": {"name": "Carla Ruiz"}})
    read = await api.as_(admin, """query($id: ID!) { deal(id: $id) { ... on Deal {
        responsible { name } company { name } contacts { name } } } }""", id=str(deal.id))
    assert read["deal"] == {"responsible": {"name": "Helper"}, "company": {"name": "Acme GmbH"},
                            "contacts": [{"name": "Carla Ruiz"}]}

    # Create contact for lead, then Create from (convert) into the Sales pipeline
    lead = await new_lead("Web form: Dana", contact_name="Dana Diaz", email="dana@example.com")
    await rule_then_move(api, admin, "lead", lead.id, await fresh_stage(lead_stages, "contact"),
                         "create_contact_for_lead", {})
    await rule_then_move(api, admin, "lead", lead.id, await fresh_stage(lead_stages, "convert"), "convert_lead",
                         {"pipeline": sales.id})
    converted = await api.as_(admin, """query($id: ID!) { lead(id: $id) { ... on Lead {
        isRepeat stage { semantic } contact { name emails } } } }""", id=str(lead.id))
    assert converted["lead"] == {"isRepeat": True, "stage": {"semantic": "success"},
                                 "contact": {"name": "Dana Diaz", "emails": ["dana@example.com"]}}
    deals = await api.as_(admin, """query($p: ID!) { deals(pipelineId: $p, search: "Dana") {
        nodes { title contacts { name } } } }""", p=str(sales.id))
    assert deals["deals"]["nodes"] == [{"title": "Web form: Dana", "contacts": [{"name": "Dana Diaz"}]}]

    # Delete element: gone, its log kept
    doomed = await new_deal("Junk")
    await rule_then_move(api, admin, "deal", doomed.id, await fresh_stage(stages, "bin"), "delete_element", {})
    gone = await api.as_(admin, "query($id: ID!) { deal(id: $id) { __typename } ruleRuns(elementType: \"deal\", "
                                "elementId: $id) { nodes { actionType status } } }", id=str(doomed.id))
    assert gone["deal"] == {"__typename": "NotFoundError"}
    assert {"actionType": "delete_element", "status": "succeeded"} in gone["ruleRuns"]["nodes"]
