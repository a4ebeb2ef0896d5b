"""Contacts and companies over GraphQL: created and changed with typed addresses, read back as values and with
types; refusals name the entry; an employee works on their own clients only."""

from typing import Any

import pytest

from server.actor import SYSTEM
from server.models import AuditEntry, Company, Contact
from server.services.elements import create_element
from tests.support import make_pipeline, make_token
from tests.support.api import api, data, refused_fields
from tests.support.clients import work

pytestmark = pytest.mark.production_backend

CONTACT = """__typename ... on ValidationError { errors { field message } } ... on ForbiddenError { message }
  ... on NotFoundError { message }
  ... on Contact { id name emails phones emailAddresses { value type } phoneNumbers { value type } companyId
                   responsibleId custom }"""
CREATE_CONTACT = f"mutation($input: ContactInput!) {{ createContact(input: $input) {{ {CONTACT} }} }}"
UPDATE_CONTACT = f"mutation($id: ID!, $input: ContactInput!) {{ updateContact(id: $id, input: $input) {{ {CONTACT} }} }}"
READ_CONTACT = f"query($id: ID!) {{ contact(id: $id) {{ {CONTACT} }} }}"
CREATE_COMPANY = """mutation($input: CompanyInput!) { createCompany(input: $input) { __typename
  ... on Company { id name emails emailAddresses { value type } phoneNumbers { value type } } } }"""


async def test_a_manager_creates_a_contact_with_typed_addresses_and_reads_it_back(db: Any) -> None:
    manager, token = await make_token("manager", "Lena")
    async with api(token) as client:
        company = (await data(client, CREATE_COMPANY, input={
            "name": "Nordlicht Solar GmbH", "emails": [{"value": "info@nordlicht-solar.example"}],
            "phones": [{"value": "+49 30 5550 1200"}]}))["createCompany"]
        assert company["emailAddresses"] == [{"value": "info@nordlicht-solar.example", "type": "work"}]
        assert company["phoneNumbers"] == [{"value": "+493055501200", "type": "work"}]

        created = (await data(client, CREATE_CONTACT, input={
            "name": "Katrin Vogel", "companyId": company["id"],
            "emails": [{"value": "k.vogel@nordlicht-solar.example", "type": "work"},
                       {"value": "katrin@mail.example", "type": "home"}],
            "phones": [{"value": "0151 5550 1201", "type": "mobile"}, {"value": "+49 30 5550 1201", "type": "work"}],
            "fields": {}}))["createContact"]
        assert created["__typename"] == "Contact", created
        read = (await data(client, READ_CONTACT, id=created["id"]))["contact"]

    assert read == created
    assert read["emails"] == ["k.vogel@nordlicht-solar.example", "katrin@mail.example"]  # values, first first
    assert read["phones"] == ["+4915155501201", "+493055501201"]
    assert read["phoneNumbers"] == [{"value": "+4915155501201", "type": "mobile"},
                                    {"value": "+493055501201", "type": "work"}]
    assert (read["companyId"], read["responsibleId"]) == (company["id"], str(manager.id))


async def test_a_refused_contact_names_each_bad_entry_and_nothing_is_saved(db: Any) -> None:
    _, token = await make_token("manager", "Lena")
    async with api(token) as client:
        result = (await data(client, CREATE_CONTACT, input={
            "name": " ", "companyId": "999999", "responsibleId": "999999",
            "emails": [{"value": "eva@alpenblick.example", "type": "mobile"}],
            "phones": [{"value": "+43 664 5550 7789"}, {"value": "12", "type": "mobile"}]}))["createContact"]

    assert refused_fields(result) == {
        "name": "give it a name",
        "emails.0.type": "must be one of work, home, other",
        "phones.1.value": "not a valid phone number",
        "companyId": "there is no company 999999 you may link",
        "responsibleId": "user 999999 does not exist",
    }
    assert await Contact.all().count() == 0


async def test_an_update_changes_what_it_is_given(db: Any) -> None:
    manager, token = await make_token("manager", "Lena")
    acme = await Company.create(name="Acme")
    bea = await Contact.create(name="Bea", emails=work("bea@acme.example"), company_id=acme.id,
                               phones=[{"value": "+4915155501201", "type": "mobile"}])
    async with api(token) as client:
        updated = (await data(client, UPDATE_CONTACT, id=str(bea.id), input={
            "emails": [{"value": "bea@home.example", "type": "home"}, {"value": "bea@acme.example"}],
            "clearCompany": True}))["updateContact"]
        unknown = (await data(client, UPDATE_CONTACT, id="999999", input={"name": "X"}))["updateContact"]

    assert updated["emails"] == ["bea@home.example", "bea@acme.example"]
    assert updated["phoneNumbers"] == [{"value": "+4915155501201", "type": "mobile"}]  # left out: kept
    assert (updated["name"], updated["companyId"]) == ("Bea", None)
    assert unknown == {"__typename": "NotFoundError", "message": "contact 999999 does not exist"}
    assert sorted(await AuditEntry.filter(element_type="contact", element_id=bea.id).values_list("field", "actor_id")) \
        == [("company", manager.id), ("emails", manager.id)]


async def test_an_employee_works_on_their_own_contacts_and_is_refused_anothers(db: Any) -> None:
    maria, maria_token = await make_token("employee", "Maria")
    tom, _ = await make_token("employee", "Tom")
    toms = await Contact.create(name="Tom's client", emails=work("secret@tom.example"), responsible_id=tom.id)
    await make_pipeline("lead", "Leads")
    via_lead = await Contact.create(name="On Maria's lead")  # nobody's: Maria sees it through her lead
    await create_element("lead", {"title": "Maria's lead", "contact": via_lead.id, "responsible": maria.id},
                         actor=SYSTEM)
    async with api(maria_token) as client:
        mine = (await data(client, CREATE_CONTACT, input={
            "name": "Maria's client", "phones": [{"value": "0171 5550 3401", "type": "mobile"}]}))["createContact"]
        changed = (await data(client, UPDATE_CONTACT, id=mine["id"], input={"name": "Maria's best client"}))[
            "updateContact"]
        refused = (await data(client, UPDATE_CONTACT, id=str(toms.id), input={
            "name": "Mine now", "emails": [{"value": "maria@example.com"}]}))["updateContact"]
        unseen = (await data(client, READ_CONTACT, id=str(toms.id)))["contact"]
        missing = (await data(client, READ_CONTACT, id="999999"))["contact"]
        linked = (await data(client, READ_CONTACT, id=str(via_lead.id)))["contact"]
        linked_change = (await data(client, UPDATE_CONTACT, id=str(via_lead.id), input={"name": "X"}))["updateContact"]
        for_tom = (await data(client, CREATE_CONTACT, input={"name": "For Tom", "responsibleId": str(tom.id)}))[
            "createContact"]

    assert (mine["responsibleId"], changed["name"]) == (str(maria.id), "Maria's best client")
    assert refused == {"__typename": "ForbiddenError",
                       "message": "you may only change contacts and companies you are responsible for"}
    await toms.refresh_from_db()
    assert (toms.name, toms.emails) == ("Tom's client", work("secret@tom.example"))
    # Another's contact and one that does not exist answer alike: ids reveal nothing.
    assert unseen["__typename"] == missing["__typename"] == "ForbiddenError"
    assert unseen["message"] == missing["message"]
    assert "tom.example" not in str(unseen)
    assert linked["name"] == "On Maria's lead"  # seen through her lead, but not hers to change
    assert linked_change == refused
    assert for_tom == {"__typename": "ForbiddenError",
                       "message": "employees may only create contacts and companies they are responsible for"}
    assert not await Contact.filter(name="For Tom").exists()
