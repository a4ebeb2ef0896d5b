"""Create contact for lead: a contact from the lead's name, email and phone, linked; the lead becomes a repeat lead.

A lead has no name, email or phone columns: they come from its fields `contact_name`, `email`
and `phone` (custom fields, as web forms fill them) unless the rule names other fields; the name
falls back to the lead's title.
"""

from typing import Any

from server.errors import ActionError
from server.i18n import N_
from server.kinds import AddressKind, EmailType
from server.models import AuditEntry, Contact, Lead
from server.rules import clients, elements
from server.rules.actions.base import (
    NO_NAMES,
    Action,
    Done,
    Example,
    Names,
    Params,
    UserId,
    stage_entity_type,
    unknown_users,
)
from server.rules.context import RunContext

DEFAULT_FIELDS = {"name_field": "contact_name", "email_field": "email", "phone_field": "phone"}


class ContactFieldsParams(Params):
    responsible: UserId | None = None
    """the contact's responsible; empty: the lead's responsible"""
    name_field: str | None = None
    """the lead's field with the contact's name; empty: contact_name, else the lead's title"""
    email_field: str | None = None
    """the lead's field with the email address; empty: email"""
    phone_field: str | None = None
    """the lead's field with the phone number; empty: phone"""


async def check_lead_fields(params: ContactFieldsParams, stage_id: int) -> list[tuple[str, str]]:
    entity_type = await stage_entity_type(stage_id)
    if entity_type != "lead":
        return [("", "this rule works on leads: put it on a stage of a lead pipeline")]
    types = await elements.field_types("lead")
    problems = []
    for name in DEFAULT_FIELDS:
        field = getattr(params, name)
        if field is not None and types.get(field, ("", []))[0] not in ("string", "text"):
            problems.append((name, f"'{field}' is not a text field of a lead"))
    return problems + await unknown_users(responsible=params.responsible)


def contact_values(lead: Lead, params: ContactFieldsParams) -> dict[str, Any]:
    """Name and typed emails and phones for a contact made from the lead: the email as a work address, the
    number as a mobile one if its numbering plan says so (else work). A value that is no email address or phone number fails the run, naming the lead's field:
    no contact is made with a half-read form."""

    def field(name: str) -> str:
        return getattr(params, name) or DEFAULT_FIELDS[name]

    def value(name: str) -> str:
        raw = lead.title if field(name) == "title" else (lead.custom or {}).get(field(name))
        return str(raw or "").strip()

    def checked(name: str, kind: AddressKind) -> list[dict[str, str]]:
        text = value(name)
        if not text:
            return []
        try:
            stored = clients.address_value(kind, text)
            return [{"value": stored, "type": EmailType.work if kind == AddressKind.email else clients.phone_type(stored)}]
        except ValueError as exc:
            raise ActionError(f"the lead's field '{field(name)}' holds {text!r}: {exc}; correct it and run the rule "
                              "again") from None

    return {
        "name": (value("name_field") or lead.title)[:200],
        "emails": checked("email_field", AddressKind.email),
        "phones": checked("phone_field", AddressKind.phone),
    }


class CreateContactForLead(Action[ContactFieldsParams]):
    key = "create_contact_for_lead"
    title = N_("Create contact for lead")
    summary = N_("Makes a contact from the name, email and phone a lead came with.")
    gives = N_("the new contact")
    group = "element"
    Params = ContactFieldsParams
    outputs = ("contact_id",)
    example = Example("Make a contact from the lead", {}, entity_type="lead")

    async def check(self, params: ContactFieldsParams, *, stage_id: int) -> list[tuple[str, str]]:
        return await check_lead_fields(params, stage_id)

    async def execute(self, ctx: RunContext, params: ContactFieldsParams) -> Done:
        lead = ctx.element
        if not isinstance(lead, Lead):
            raise ActionError("Create contact for lead works on leads only")
        if lead.contact_id is not None:
            if await AuditEntry.exists(element_type="lead", element_id=lead.id, field="contact", rule_run_id=ctx.run.id):
                return Done({"contact_id": lead.contact_id})  # this run's effect is already there
            raise ActionError(f"the lead already has a contact (contact {lead.contact_id}): no contact created")
        contact = await Contact.create(
            **contact_values(lead, params), company_id=lead.company_id,
            responsible_id=params.responsible or lead.responsible_id,
        )
        await ctx.change_fields({"contact": contact.id, "is_repeat": True})
        await ctx.add_entry("history", f"Contact '{contact.name}' created from the lead")
        return Done({"contact_id": contact.id})

    def describe(self, params: ContactFieldsParams, names: Names = NO_NAMES) -> str:
        return "Creates a contact from the lead's name, email and phone, links it and marks the lead repeat"


ACTION = CreateContactForLead()
