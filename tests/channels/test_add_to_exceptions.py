"""Add to exceptions: the contact's and the company's addresses go on the exception list once, normalised;
with "delete element" the deal goes and its pending runs are cancelled."""

import pytest

from server.actor import SYSTEM
from server.channels.addresses import normalise_phone
from server.models import Company, Contact, Deal, ExceptionEntry, Lead, Pipeline, RuleRun, Stage, TimelineEntry
from server.services import elements as element_service
from server.services.demo import load_demo_if_empty
from tests.support.clients import work
from tests.support import add_rule, make_pipeline, wait_for_runs

pytestmark = pytest.mark.production_backend


async def client_deal(stage, *, title: str = "Roof") -> Deal:
    company = await Company.create(name="Acme", emails=work("Office@Acme.example"), phones=work("+49 30 5550-1200"))
    contact = await Contact.create(
        name="Carla", company_id=company.id,
        emails=[{"value": " Carla@Acme.example ", "type": "work"}, {"value": "carla@home.example", "type": "home"}],
        phones=[{"value": "+49 (0)151 5550 1201", "type": "mobile"}],
    )
    return await element_service.create_element("deal", {"title": title, "company": company.id},
                                                stage_id=stage.id, contact_ids=[contact.id], actor=SYSTEM)


async def history(deal_id: int) -> list[str]:
    return [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal_id, kind="history")
            .order_by("id")]


async def test_the_contact_and_company_addresses_go_on_the_exception_list_once(db):
    await ExceptionEntry.create(kind="email", value="office@acme.example", note="listed by hand")
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_to_exceptions", {}, title="Spam")

    deal = await client_deal(stages["new"])
    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded" and run.outputs == {"added": 4}
    entries = {e.value: e for e in await ExceptionEntry.all()}
    assert sorted(entries) == ["+4915155501201", "+493055501200", "carla@acme.example", "carla@home.example",
                               "office@acme.example"]
    assert entries["office@acme.example"].note == "listed by hand"  # kept as it was, not listed twice
    assert entries["office@acme.example"].rule_run_id is None
    assert {(e.kind, e.rule_run_id) for v, e in entries.items() if v != "office@acme.example"} == {
        ("email", run.id), ("phone", run.id)}
    assert await history(deal.id) == [
        "Added to the exception list: carla@acme.example, carla@home.example, +4915155501201, +493055501200"]

    # A second run over the same addresses (another deal of clients written the same way) adds nothing.
    again = await client_deal(stages["new"], title="Second roof")
    [second] = await wait_for_runs("deal", again.id, 1)
    assert second.status == "succeeded" and second.outputs == {"added": 0}
    assert await ExceptionEntry.all().count() == 5
    assert await history(again.id) == ["Already on the exception list: carla@acme.example, carla@home.example, "
                                       "+4915155501201, office@acme.example, +493055501200"]


async def test_a_deal_without_clients_adds_nothing_and_says_so(db):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_to_exceptions", {})
    deal = await element_service.create_element("deal", {"title": "Nobody"}, stage_id=stages["new"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded" and run.outputs == {"added": 0}
    assert await ExceptionEntry.all().count() == 0
    assert await history(deal.id) == [
        "Nothing to add to the exception list: the contact and company have no email address or phone number"]


async def test_with_delete_element_the_deal_is_deleted_and_its_pending_runs_cancelled(db):
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "add_to_exceptions", {"delete_element": True}, title="Spam")
    await add_rule(stages["new"], "add_comment", {"text": "Still here?"},
                   timing={"kind": "after", "amount": 1, "unit": "days"})

    deal = await client_deal(stages["new"])
    runs = await wait_for_runs("deal", deal.id, 2)

    by_type = {r.action_type: r for r in runs}
    assert by_type["add_to_exceptions"].status == "succeeded"
    assert by_type["add_to_exceptions"].outputs == {"added": 5}
    assert by_type["add_comment"].status == "cancelled"
    assert "deleted by the rule 'Spam'" in (by_type["add_comment"].reason or "")
    assert not await Deal.exists(id=deal.id)
    assert await ExceptionEntry.all().count() == 5
    assert await RuleRun.filter(element_id=deal.id).count() == 2  # the run log is kept


@pytest.mark.parametrize(("written", "stored"), [
    ("+49 30 5550 1200", "+493055501200"),
    ("+49 (0)30 5550-1200", "+493055501200"),
    (" +1 (415) 555-0100 ", "+14155550100"),
    ("030 5550 1200", "03055501200"),  # no country code: its digits
    ("+49 170 555", "+49170555"),
])
def test_phone_numbers_compare_in_one_form(written: str, stored: str):
    assert normalise_phone(written) == stored


async def test_the_demo_excepts_and_deletes_spam_leads_in_junk_and_keeps_the_others(db):
    assert await load_demo_if_empty()
    leads = await Pipeline.get(name="Leads")
    junk = await Stage.get(pipeline_id=leads.id, code="junk")
    sender = await Contact.create(name="Prize Draw", emails=work("Winner@Prize-Draw.example"))
    spam = await element_service.create_element("lead", {"title": "You have won", "source": "spam",
                                                         "contact": sender.id}, stage_id=junk.id, actor=SYSTEM)
    quiet = await element_service.create_element("lead", {"title": "No reply", "source": "email",
                                                          "contact": sender.id}, stage_id=junk.id, actor=SYSTEM)

    spam_runs = await wait_for_runs("lead", spam.id, 2)
    quiet_runs = await wait_for_runs("lead", quiet.id, 1)

    assert not await Lead.exists(id=spam.id) and await Lead.exists(id=quiet.id)
    assert {(r.rule_key, r.status) for r in spam_runs} == {("spam", "succeeded"), ("clean_up", "cancelled")}
    assert {(r.rule_key, r.status) for r in quiet_runs if r.rule_key == "spam"} == {("spam", "skipped")}
    assert await ExceptionEntry.filter(value="winner@prize-draw.example").count() == 1
