"""An employee sees only the customers they may see, and may link only those: a contact or company
they are responsible for, or one linked to a lead or deal they are responsible for. A client that
does not exist and one they may not see are refused with the same message, naming the field."""

from typing import Any

import pytest

from server.actor import SYSTEM
from server.models import Company, Contact, Deal, DealContact, Lead
from tests.support.api import api, data, refused_fields
from tests.support import make_pipeline, make_token
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

RESULT = "__typename ... on ValidationError { errors { field message } } ... on ForbiddenError { message }"
CREATE_DEAL = f"""mutation($input: CreateDealInput!) {{ createDeal(input: $input) {{ {RESULT}
  ... on Deal {{ id contacts {{ name emails phones }} company {{ name emails }} }} }} }}"""
CREATE_LEAD = f"""mutation($input: CreateLeadInput!) {{ createLead(input: $input) {{ {RESULT}
  ... on Lead {{ id contact {{ name emails phones }} company {{ name emails }} }} }} }}"""
UPDATE_DEAL = f"""mutation($id: ID!, $fields: JSON!) {{ updateDeal(id: $id, fields: $fields) {{ {RESULT}
  ... on Deal {{ company {{ name emails }} }} }} }}"""
UPDATE_LEAD = f"""mutation($id: ID!, $fields: JSON!) {{ updateLead(id: $id, fields: $fields) {{ {RESULT}
  ... on Lead {{ contact {{ name emails }} company {{ name emails }} }} }} }}"""


@pytest.fixture
async def people(db: Any) -> dict[str, Any]:
    await make_pipeline("deal")
    await make_pipeline("lead", "Leads")
    maria, maria_token = await make_token("employee", "Maria")
    tom, _ = await make_token("employee", "Tom")
    _, manager_token = await make_token("manager", "Lena")
    toms_contact = await Contact.create(name="Tom's client", emails=work("secret@tom.example"), phones=work("+493055500100"),
                                        responsible_id=tom.id)
    toms_company = await Company.create(name="Tom's company", emails=work("board@tom.example"), responsible_id=tom.id)
    marias_contact = await Contact.create(name="Maria's client", emails=work("m@example.com"), responsible_id=maria.id)
    # Nobody is responsible for these; Maria sees them through her lead, Tom's deal shows the other one.
    via_lead = await Contact.create(name="Via lead", emails=work("lead@example.com"))
    via_company = await Company.create(name="Via lead company")
    from server.services.elements import create_element

    await create_element("lead", {"title": "Maria's lead", "contact": via_lead.id, "company": via_company.id,
                                  "responsible": maria.id}, actor=SYSTEM)
    toms_deal = await create_element("deal", {"title": "Tom's deal", "responsible": tom.id}, actor=SYSTEM)
    via_toms_deal = await Contact.create(name="On Tom's deal", emails=work("deal@tom.example"))
    await DealContact.create(deal_id=toms_deal.id, contact_id=via_toms_deal.id, position=0)
    return {"maria": maria_token, "manager": manager_token, "toms_contact": toms_contact.id,
            "toms_company": toms_company.id, "marias_contact": marias_contact.id, "via_lead": via_lead.id,
            "via_company": via_company.id, "via_toms_deal": via_toms_deal.id}


def no_link(kind: str, ident: int) -> str:
    return f"there is no {kind} {ident} you may link"


async def test_create_deal_refuses_contacts_and_companies_of_other_employees(people: dict[str, Any]) -> None:
    async with api(people["maria"]) as client:
        result = (await data(client, CREATE_DEAL, input={
            "title": "Grab", "contactIds": [str(people["marias_contact"]), str(people["toms_contact"]),
                                            str(people["via_toms_deal"]), "999999"],
            "fields": {"company": people["toms_company"]}}))["createDeal"]
        assert refused_fields(result) == {
            "contactIds.1": no_link("contact", people["toms_contact"]),
            "contactIds.2": no_link("contact", people["via_toms_deal"]),
            "contactIds.3": no_link("contact", 999999),  # the same words for what does not exist
            "fields.company": no_link("company", people["toms_company"]),
        }
        assert "tom.example" not in str(result)
        allowed = (await data(client, CREATE_DEAL, input={
            "title": "Mine", "contactIds": [str(people["marias_contact"]), str(people["via_lead"])],
            "fields": {"company": people["via_company"]}}))["createDeal"]
        assert [c["name"] for c in allowed["contacts"]] == ["Maria's client", "Via lead"]
        assert allowed["company"]["name"] == "Via lead company"
    assert await Deal.filter(title="Grab").count() == 0


async def test_create_lead_refuses_a_contact_or_company_of_another_employee(people: dict[str, Any]) -> None:
    async with api(people["maria"]) as client:
        result = (await data(client, CREATE_LEAD, input={"title": "Grab", "fields": {
            "contact": people["toms_contact"], "company": people["toms_company"]}}))["createLead"]
        assert refused_fields(result) == {"fields.contact": no_link("contact", people["toms_contact"]),
                                          "fields.company": no_link("company", people["toms_company"])}
        missing = (await data(client, CREATE_LEAD, input={"title": "Grab", "fields": {"contact": 999999}}))["createLead"]
        assert refused_fields(missing) == {"fields.contact": no_link("contact", 999999)}
        mine = (await data(client, CREATE_LEAD, input={"title": "Mine", "fields": {
            "contact": people["marias_contact"]}}))["createLead"]
        assert mine["contact"]["emails"] == ["m@example.com"]
    assert await Lead.filter(title="Grab").count() == 0


async def test_update_deal_refuses_a_company_of_another_employee(people: dict[str, Any]) -> None:
    async with api(people["maria"]) as client:
        deal = (await data(client, CREATE_DEAL, input={"title": "Mine"}))["createDeal"]
        result = (await data(client, UPDATE_DEAL, id=deal["id"], fields={"company": people["toms_company"]}))
        assert refused_fields(result["updateDeal"]) == {"fields.company": no_link("company", people["toms_company"])}
        assert "board@tom.example" not in str(result)
        allowed = (await data(client, UPDATE_DEAL, id=deal["id"], fields={"company": people["via_company"]}))
        assert allowed["updateDeal"]["company"]["name"] == "Via lead company"


async def test_update_lead_refuses_a_contact_or_company_of_another_employee(people: dict[str, Any]) -> None:
    async with api(people["maria"]) as client:
        lead = (await data(client, CREATE_LEAD, input={"title": "Mine"}))["createLead"]
        for kind in ("contact", "company"):
            result = (await data(client, UPDATE_LEAD, id=lead["id"], fields={kind: people[f"toms_{kind}"]}))
            assert refused_fields(result["updateLead"]) == {f"fields.{kind}": no_link(kind, people[f"toms_{kind}"])}
            assert "tom.example" not in str(result)
        assert (await Lead.get(id=int(lead["id"]))).contact_id is None


async def test_managers_link_any_client(people: dict[str, Any]) -> None:
    async with api(people["manager"]) as client:
        deal = (await data(client, CREATE_DEAL, input={
            "title": "Team", "contactIds": [str(people["toms_contact"])],
            "fields": {"company": people["toms_company"]}}))["createDeal"]
        assert deal["contacts"][0]["emails"] == ["secret@tom.example"]
        twice = (await data(client, CREATE_DEAL, input={
            "title": "Twice", "contactIds": [str(people["toms_contact"])] * 2}))["createDeal"]
        assert refused_fields(twice) == {"contactIds.1": f"contact {people['toms_contact']} is listed twice"}
