"""Contacts and companies for the faces: read, create and change them, with typed email addresses and phone numbers.

Access (services/access.py): admins and managers work on every client; an employee reads the clients
`visible_clients` gives them, creates clients they are responsible for and changes only those. A client
an employee may not see and one that does not exist get the same answer, so ids reveal nothing.
Every problem of an input is reported at once, per field (`phones.1.value: not a valid phone number`),
and nothing is saved.
"""

from dataclasses import dataclass
from typing import Any, TypeVar

from server.db import transaction
from server.errors import FieldError, Forbidden, NotFound, ValidationFailed
from server.kinds import AddressKind
from server.models import Company, Contact
from server.rules import clients, elements
from server.rules.clients import ADDRESS_MAX_LENGTH, MAX_ADDRESSES, Address
from server.services.access import Acting, Actor, visible_clients

__all__ = [
    "ADDRESS_MAX_LENGTH", "MAX_ADDRESSES", "Address", "ClientInput", "create_company", "create_contact",
    "get_company", "get_contact", "update_company", "update_contact",
]

_Client = TypeVar("_Client", Contact, Company)
NAME_MAX = 200  # the name column
# Columns a ClientInput sets (relations as `<name>_id`); anything in `fields` is a custom field.
COLUMNS = ("name", "emails", "phones", "company", "responsible")
RELATIONS = ("company", "responsible")
SEEING = "you may only see contacts and companies you are responsible for or that are linked to your leads and deals"
CHANGING = "you may only change contacts and companies you are responsible for"


@dataclass
class ClientInput:
    """What a create or update sets; None leaves a field as it is (on create: empty, responsible the creator)."""

    name: str | None = None
    emails: list[Address] | None = None
    phones: list[Address] | None = None
    company_id: int | None = None  # contacts only: the company they work for
    clear_company: bool = False
    responsible_id: int | None = None
    fields: dict[str, Any] | None = None  # custom fields by code


async def _checked(kind: str, data: ClientInput, *, actor: Acting, creating: bool) -> dict[str, Any]:
    """The changes `data` asks for, typed, or ValidationFailed with every problem."""
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if data.name is not None or creating:
        name = (data.name or "").strip()
        if not name:
            errors.append(FieldError("name", "give it a name"))
        elif len(name) > NAME_MAX:
            errors.append(FieldError("name", f"must be at most {NAME_MAX} characters"))
        changes["name"] = name
    for address_kind, given in ((AddressKind.email, data.emails), (AddressKind.phone, data.phones)):
        if given is None:
            continue
        field = clients.LIST_FIELDS[address_kind]
        try:
            changes[field] = clients.typed_addresses(address_kind, given, field=field)
        except ValidationFailed as exc:
            errors += exc.errors
    if kind == "company" and (data.company_id is not None or data.clear_company):
        errors.append(FieldError("company_id", "a company belongs to no company"))
    elif data.company_id is not None and data.clear_company:
        errors.append(FieldError("company_id", "give a company or clear it, not both"))
    elif data.clear_company:
        changes["company"] = None
    elif data.company_id is not None:
        if data.company_id in await visible_clients(actor, "company", {data.company_id}):
            changes["company"] = data.company_id
        else:
            errors.append(FieldError("company_id", elements.missing_reference("company", data.company_id)))
    if data.responsible_id is not None:
        try:
            changes["responsible"] = await elements.coerce_value("user", [], data.responsible_id)
        except ValueError as exc:
            errors.append(FieldError("responsible_id", str(exc)))
    if data.fields:
        try:
            changes.update(await _custom_fields(kind, data.fields))
        except ValidationFailed as exc:
            errors += exc.errors
    if errors:
        raise ValidationFailed(errors)
    return changes


async def _custom_fields(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    types = {code: spec for code, spec in (await clients.field_types(kind)).items()
             if code not in clients.BUILTIN_FIELDS[kind]}
    builtin = [FieldError(f"fields.{name}", f"set {name} with its own argument, not in fields")
               for name in values if name in clients.BUILTIN_FIELDS[kind]]
    if builtin:
        raise ValidationFailed(builtin)
    return await elements.coerce_field_map(values, types, clients.coerce_client_value, owner=kind, required="name",
                                           prefix="fields")


def _kind(model: type[Contact] | type[Company]) -> str:
    return "contact" if model is Contact else "company"


async def _create(model: type[_Client], data: ClientInput, *, actor: Acting) -> _Client:
    kind = _kind(model)
    changes = await _checked(kind, data, actor=actor, creating=True)
    responsible_id = changes.pop("responsible", None) or actor.user_id
    if isinstance(actor, Actor) and not actor.sees_all_elements and responsible_id != actor.user_id:
        raise Forbidden("employees may only create contacts and companies they are responsible for")
    columns = {(f"{k}_id" if k in RELATIONS else k): v for k, v in changes.items() if k in COLUMNS}
    custom = {k: elements.to_json(v) for k, v in changes.items() if k not in COLUMNS}
    async with transaction():
        return await model.create(**columns, custom=custom, responsible_id=responsible_id)


async def _update(model: type[_Client], client_id: int, data: ClientInput, *, actor: Acting) -> _Client:
    kind = _kind(model)
    changes = await _checked(kind, data, actor=actor, creating=False)
    async with transaction():
        # Locked: a Change contact rule may write the same row at the same time.
        row = await model.filter(id=client_id).select_for_update().first()
        if isinstance(actor, Actor) and not actor.sees_all_elements:
            if row is None or row.responsible_id != actor.user_id:
                raise Forbidden(CHANGING)  # the same for a client they may see, one they may not, and none
        if row is None:
            raise NotFound(kind, client_id)
        await elements.record_changes(kind, row, changes, builtin=COLUMNS, relations=RELATIONS,
                                      actor_id=actor.user_id, rule_run_id=None)
    return row


async def _get(model: type[_Client], client_id: int, *, actor: Acting) -> _Client:
    kind = _kind(model)
    if client_id not in await visible_clients(actor, kind, {client_id}):
        if isinstance(actor, Actor) and not actor.sees_all_elements:
            raise Forbidden(SEEING)
        raise NotFound(kind, client_id)
    row = await model.get_or_none(id=client_id)
    if row is None:
        raise NotFound(kind, client_id)  # deleted in between
    return row


async def get_contact(contact_id: int, *, actor: Acting) -> Contact:
    return await _get(Contact, contact_id, actor=actor)


async def get_company(company_id: int, *, actor: Acting) -> Company:
    return await _get(Company, company_id, actor=actor)


async def create_contact(data: ClientInput, *, actor: Acting) -> Contact:
    """A new contact; its responsible defaults to the creator (an employee may make only their own)."""
    return await _create(Contact, data, actor=actor)


async def create_company(data: ClientInput, *, actor: Acting) -> Company:
    return await _create(Company, data, actor=actor)


async def update_contact(contact_id: int, data: ClientInput, *, actor: Acting) -> Contact:
    """Change what `data` sets; `emails` / `phones` replace the lists. Each real change gets an audit row."""
    return await _update(Contact, contact_id, data, actor=actor)


async def update_company(company_id: int, data: ClientInput, *, actor: Acting) -> Company:
    return await _update(Company, company_id, data, actor=actor)
