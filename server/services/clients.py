"""Contacts and companies for the faces: read, create and change them, with typed email addresses and phone numbers.

Access (services/access.py): admins and managers work on every client; an employee reads the clients
`visible_clients` gives them, creates clients they are responsible for and changes only those. A client
an employee may not see and one that does not exist get the same answer, so ids reveal nothing.
Every problem of an input is reported at once, per field (`phones.1.value: not a valid phone number`),
and nothing is saved.
"""

from dataclasses import dataclass
from typing import Any, TypeVar

from server.db import column, transaction
from server.errors import FieldError, Forbidden, NotFound, ValidationFailed
from server.kinds import AddressKind
from server.models import Company, Contact, Deal, DealContact, Lead
from server.rules import clients, elements
from server.rules.clients import ADDRESS_MAX_LENGTH, MAX_ADDRESSES, Address
from server.services.access import Acting, Actor, element_scope, visible_clients

__all__ = [
    "ADDRESS_MAX_LENGTH", "MAX_ADDRESSES", "Address", "ClientInput", "create_company", "create_contact",
    "client_elements", "element_clients", "list_company_contacts", "get_company", "get_contact", "list_clients", "update_company",
    "update_contact",
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


# ---------------------------------------------------------------- lists and links, for the admin's pages

LIST_MAX = 200


def _model_of(kind: str) -> type[Contact] | type[Company]:
    if kind not in ("contact", "company"):
        raise ValidationFailed.one("kind", f"'{kind}' is not contact or company")
    return Contact if kind == "contact" else Company


async def _candidate_ids(actor: Actor, kind: str) -> set[int]:
    """What an employee may see: their own clients and those linked to their leads and deals (as visible_clients)."""
    model = _model_of(kind)
    ids: set[int] = set(await column(model.filter(responsible_id=actor.user_id), "id"))
    field = f"{kind}_id"
    for element_model in (Lead, Deal) if kind == "company" else (Lead,):
        ids |= {i for i in await column(element_model.filter(responsible_id=actor.user_id), field) if i}
    if kind == "contact":
        ids |= set(await column(DealContact.filter(deal__responsible_id=actor.user_id), "contact_id"))
    return ids


async def list_clients(kind: str, *, actor: Acting, search: str | None = None, first: int = LIST_MAX) -> list[Any]:
    """Contacts or companies the actor may see, by name, at most `first` (≤ LIST_MAX)."""
    model = _model_of(kind)
    query = model.all()
    if isinstance(actor, Actor) and not actor.sees_all_elements:
        query = query.filter(id__in=list(await _candidate_ids(actor, kind)))
    if search:
        query = query.filter(name__icontains=search)
    return list(await query.order_by("name", "id").limit(min(first, LIST_MAX)))


async def client_elements(kind: str, client_id: int, *, actor: Acting) -> dict[str, list[Any]]:
    """The leads and deals of a contact or company that the actor may see, newest first: {"lead": …, "deal": …}."""
    _model_of(kind)
    await (get_contact(client_id, actor=actor) if kind == "contact" else get_company(client_id, actor=actor))
    scope = element_scope(actor)
    if kind == "company":
        leads = Lead.filter(company_id=client_id, **scope)
        deals = Deal.filter(company_id=client_id, **scope)
    else:
        leads = Lead.filter(contact_id=client_id, **scope)
        deals = Deal.filter(contact_links__contact_id=client_id, **scope)
    return {"lead": list(await leads.order_by("-id").limit(LIST_MAX)),
            "deal": list(await deals.order_by("-id").limit(LIST_MAX))}


async def element_clients(element_type: str, element: Any, *, actor: Acting) -> tuple[list[Contact], Company | None]:
    """The contacts (a deal's in order) and the company of a lead or deal the actor has already been allowed
    to see: linked clients are visible to whoever sees the element (access.visible_clients)."""
    if element_type == "deal":
        links = await DealContact.filter(deal_id=element.id).order_by("position", "id").prefetch_related("contact")
        contacts = [link.contact for link in links]
    else:
        contacts = [c for c in [await Contact.get_or_none(id=element.contact_id)] if c] if element.contact_id else []
    company = await Company.get_or_none(id=element.company_id) if element.company_id else None
    return contacts, company


async def list_company_contacts(company_id: int, *, actor: Acting) -> list[Contact]:
    """The contacts working for a company, those the actor may see, by name."""
    await _get(Company, company_id, actor=actor)
    rows = await Contact.filter(company_id=company_id).order_by("name", "id").limit(LIST_MAX)
    visible = await visible_clients(actor, "contact", {c.id for c in rows})
    return [c for c in rows if c.id in visible]
