"""A client's email addresses and phone numbers are typed (work, home, mobile, other), numbers are stored in E.164,
and what is not an address is refused naming the entry, with nothing saved. Migration 0006 typed the plain
strings stored before."""

import importlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from tortoise import Tortoise

from server import config
from server.actor import SYSTEM, actor_for
from server.errors import ValidationFailed
from server.kinds import AddressType, EmailType, PhoneType
from server.models import AuditEntry, Company, Contact, CustomField, Lead
from server.rules import clients, elements
from server.services import elements as element_service
from server.services.clients import Address, ClientInput, create_company, create_contact, update_contact
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs
from tests.support.clients import work

migration = importlib.import_module("server.migrations.0006_typed_addresses")


def refused(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


@pytest.fixture
def austria(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PIPEWRIGHT_DEFAULT_REGION", "at")
    config.reload()
    yield
    monkeypatch.delenv("PIPEWRIGHT_DEFAULT_REGION")
    config.reload()


async def test_a_contact_keeps_typed_addresses_first_first_with_numbers_in_e164(db: Any) -> None:
    contact = await create_contact(ClientInput(
        name="Katrin Vogel",
        emails=[Address(" Katrin.Vogel@Nordlicht-Solar.example ", "work"), Address("katrin@mail.example", "home")],
        phones=[Address("+49 (151) 5550-1201", "mobile"), Address("030 5550 1201", "work")],
    ), actor=SYSTEM)

    await contact.refresh_from_db()
    # Stripped, case kept for display; a national number is read in the default region (DE).
    assert contact.emails == [{"value": "Katrin.Vogel@Nordlicht-Solar.example", "type": "work"},
                              {"value": "katrin@mail.example", "type": "home"}]
    assert contact.phones == [{"value": "+4915155501201", "type": "mobile"}, {"value": "+493055501201", "type": "work"}]
    assert clients.addresses(contact, "email", address_type="home") == ["katrin@mail.example"]
    assert clients.addresses(contact, "phone") == ["+4915155501201", "+493055501201"]
    assert clients.addresses(contact, "phone", address_type="home") == []


async def test_a_number_without_country_code_is_read_in_the_configured_region(db: Any, austria: None) -> None:
    company = await create_company(ClientInput(name="Alpenblick Hotels AG", phones=[Address("01 5550 7788")]),
                                   actor=SYSTEM)

    assert company.phones == [{"value": "+43155507788", "type": "work"}]


async def test_an_invalid_number_or_address_is_refused_naming_the_entry_and_nothing_is_saved(db: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await create_contact(ClientInput(
            name="Paul Wagner", emails=[Address("paul@@mail"), Address("paul@mail.example", "home")],
            phones=[Address("+49 170 5550 8080", "mobile"), Address("+49 170 555", "mobile"), Address("call me")],
        ), actor=SYSTEM)

    assert refused(exc) == {
        "emails.0.value": "not a valid email address",
        "phones.1.value": "not a valid phone number",
        "phones.2.value": "not a valid phone number",
    }
    assert await Contact.all().count() == 0

    paul = await create_contact(ClientInput(name="Paul Wagner", phones=[Address("+49 170 5550 8080", "mobile")]),
                                actor=SYSTEM)
    with pytest.raises(ValidationFailed) as exc:
        await update_contact(paul.id, ClientInput(name="Paul W.", phones=[Address("0000")]), actor=SYSTEM)
    assert refused(exc) == {"phones.0.value": "not a valid phone number"}
    await paul.refresh_from_db()
    assert (paul.name, paul.phones) == ("Paul Wagner", [{"value": "+4917055508080", "type": "mobile"}])
    assert not await AuditEntry.exists(element_type="contact", element_id=paul.id)


async def test_types_lengths_counts_and_repeats_are_checked_per_entry(db: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await create_contact(ClientInput(
            name="Eva", emails=[Address("eva@alpenblick.example", "mobile"), Address("EVA@alpenblick.example"),
                                Address("x" * 310 + "@example.com")],
            phones=[Address("+43 664 5550 7789", "fax"), Address("  ")],
        ), actor=SYSTEM)
    assert refused(exc) == {
        "emails.0.type": "must be one of work, home, other",  # mobile is for numbers
        "emails.1.value": "is already entry 0",  # addresses compare without case
        "emails.2.value": "must be at most 320 characters",
        "phones.0.type": "must be one of work, mobile, home, other",
        "phones.1.value": "must not be empty",
    }
    with pytest.raises(ValidationFailed) as exc:
        await create_company(ClientInput(name="Many", emails=[Address(f"a{n}@example.com") for n in range(21)]),
                             actor=SYSTEM)
    assert refused(exc) == {"emails": "at most 20 email addresses per client, not 21"}
    assert await Contact.all().count() == await Company.all().count() == 0


async def test_an_update_replaces_the_lists_it_is_given_and_audits_each_change(db: Any) -> None:
    ann = await make_user("Ann", role="manager")
    acme = await create_company(ClientInput(name="Acme"), actor=SYSTEM)
    contact = await create_contact(ClientInput(name="Bea", emails=[Address("bea@acme.example")],
                                               phones=[Address("+49 30 5550 0100")], company_id=acme.id),
                                   actor=SYSTEM)
    await update_contact(contact.id, ClientInput(emails=[Address("bea@home.example", "home")], clear_company=True),
                         actor=actor_for(ann))

    await contact.refresh_from_db()
    assert contact.emails == [{"value": "bea@home.example", "type": "home"}]
    assert contact.phones == [{"value": "+493055500100", "type": "work"}]  # not given: kept
    assert (contact.name, contact.company_id) == ("Bea", None)
    audit = await AuditEntry.filter(element_type="contact", element_id=contact.id).order_by("field")
    assert [(a.field, a.actor_id) for a in audit] == [("company", ann.id), ("emails", ann.id)]


async def test_templates_and_conditions_see_addresses_as_values_and_by_type(db: Any) -> None:
    _, stages = await make_pipeline()
    company = await Company.create(name="Acme", emails=work("office@acme.example"),
                                   phones=[{"value": "+493055500100", "type": "other"}])
    contact = await Contact.create(name="Bea", emails=[{"value": "bea@home.example", "type": "home"},
                                                       {"value": "bea@acme.example", "type": "work"}],
                                   phones=[{"value": "+4915155501201", "type": "mobile"}])
    deal = await element_service.create_element("deal", {"title": "D", "company": company.id},
                                                stage_id=stages["offer"].id, contact_ids=[contact.id], actor=SYSTEM)

    context = await elements.build_context("deal", deal)

    person = context["contact"]
    assert (person["email"], person["emails"], person["phone"]) == (
        "bea@home.example", ["bea@home.example", "bea@acme.example"], "+4915155501201")
    assert (person["work_email"], person["home_email"], person["mobile_phone"], person["work_phone"]) == (
        "bea@acme.example", "bea@home.example", "+4915155501201", None)
    firm = context["company"]
    assert (firm["email"], firm["work_email"], firm["phone"], firm["work_phone"]) == (
        "office@acme.example", "office@acme.example", "+493055500100", None)


async def test_create_contact_for_lead_refuses_a_form_number_that_is_not_one(db: Any) -> None:
    await CustomField.create(entity_type="lead", code="phone", name="Phone", type="string")
    _, stages = await make_pipeline("lead", name="Leads")
    await add_rule(stages["offer"], "create_contact_for_lead", {})
    lead = await element_service.create_element("lead", {"title": "Paul", "phone": "call after 5"},
                                                stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("lead", lead.id, 1)

    assert (run.status, run.error) == ("failed", "the lead's field 'phone' holds 'call after 5': not a valid phone "
                                                 "number; correct it and run the rule again")
    assert await Contact.all().count() == 0
    assert (await Lead.get(id=lead.id)).contact_id is None


def test_the_api_address_type_is_every_email_and_phone_type() -> None:
    assert set(AddressType) == set(EmailType) | set(PhoneType)


def test_migration_0006_types_plain_strings_and_normalises_the_numbers_it_can_read() -> None:
    assert migration.typed_entries([" Anna@Berg.example ", "", "anna@home.example"], "email", "DE") == [
        {"value": "Anna@Berg.example", "type": "work"}, {"value": "anna@home.example", "type": "work"}]
    assert migration.typed_entries(["030 5550 0100", "+43 1 5550 7788", "+49 1", "ext. 12"], "phone", "DE") == [
        {"value": "+493055500100", "type": "work"}, {"value": "+43155507788", "type": "work"},
        {"value": "+49 1", "type": "work"}, {"value": "ext. 12", "type": "work"}]  # unreadable: kept as written
    typed = [{"value": "+4915155501201", "type": "mobile"}]
    assert migration.typed_entries(typed, "phone", "DE") == typed  # run twice, changes nothing


@pytest.mark.production_backend
async def test_migration_0006_rewrites_stored_plain_string_rows_and_back(db: Any) -> None:
    """Rows written in the old shape (the JSON column takes any list) are typed in place by the migration's
    own function, on SQLite and PostgreSQL; going back leaves the values."""
    old = await Contact.create(name="Old", emails=[" Old@Acme.example "], phones=["030 5550 0100", "ext. 12"])
    firm = await Company.create(name="Old firm", emails=["office@acme.example"], phones=[])
    new = await Contact.create(name="New", emails=work("new@acme.example"))
    editor = SimpleNamespace(client=Tortoise.get_connection("default"))

    await migration.type_addresses(None, editor)

    rows = {c.name: (c.emails, c.phones) for c in await Contact.all()}
    assert rows["Old"] == ([{"value": "Old@Acme.example", "type": "work"}],
                           [{"value": "+493055500100", "type": "work"}, {"value": "ext. 12", "type": "work"}])
    assert rows["New"] == (work("new@acme.example"), [])
    assert (await Company.get(id=firm.id)).emails == work("office@acme.example")
    assert clients.addresses(await Contact.get(id=old.id), "phone") == ["+493055500100", "ext. 12"]

    await migration.untype_addresses(None, editor)

    assert ((await Contact.get(id=old.id)).emails, (await Contact.get(id=new.id)).emails) == (
        ["Old@Acme.example"], ["new@acme.example"])
