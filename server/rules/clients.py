"""Contacts and companies as rules change them: typed fields (built-in and custom) with an audit trail.

Audit rows use element_type "contact" / "company", so a client's changes are attributed like a deal's.
"""

import re
from typing import Any

from server.models import Company, Contact, CustomField
from server.rules.elements import coerce_field_map, coerce_value, record_changes

CLIENT_MODELS: dict[str, type[Contact] | type[Company]] = {"contact": Contact, "company": Company}

# `email` / `phone` set the first address / number; the others stay.
BUILTIN_FIELDS: dict[str, dict[str, str]] = {
    "contact": {"name": "string", "email": "email", "phone": "phone", "company": "company", "responsible": "user"},
    "company": {"name": "string", "email": "email", "phone": "phone", "responsible": "user"},
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")


async def field_types(client_type: str) -> dict[str, tuple[str, list[Any]]]:
    types: dict[str, tuple[str, list[Any]]] = {k: (v, []) for k, v in BUILTIN_FIELDS[client_type].items()}
    for custom in await CustomField.filter(entity_type=client_type):
        types.setdefault(custom.code, (custom.type, list(custom.options or [])))
    return types


async def coerce_client_value(field_type: str, options: list[Any], value: Any) -> Any:
    if field_type == "email":
        text = str(value or "").strip()
        if text and not _EMAIL.match(text):
            raise ValueError(f"must be an email address, not {value!r}")
        return text or None
    if field_type == "phone":
        text = str(value or "").strip()
        if text and not _PHONE.match(text):
            raise ValueError(f"must be a phone number, not {value!r}")
        return text or None
    return await coerce_value(field_type, options, value)


async def coerce_changes(client_type: str, changes: dict[str, Any], *, prefix: str = "fields") -> dict[str, Any]:
    """Every field checked; all problems reported together, nothing applied."""
    return await coerce_field_map(changes, await field_types(client_type), coerce_client_value, owner=client_type,
                                  required="name", prefix=prefix)


async def apply_changes(
    client_type: str, client: Contact | Company, changes: dict[str, Any], *,
    actor_id: int | None, rule_run_id: int | None = None,
) -> list[str]:
    """Write coerced values; each real change gets an audit row. Returns the changed names."""
    changed = await record_changes(client_type, client, changes, builtin=BUILTIN_FIELDS[client_type],
                                   relations=("company", "responsible"), first_of_list=("email", "phone"),
                                   actor_id=actor_id, rule_run_id=rule_run_id)
    return [change.name for change in changed]


async def element_clients(element_type: str, element: Any, *, client: str = "any") -> list[Contact | Company]:
    """The clients of a lead or deal a message may go to, in the order they are tried: its (first) contact, then
    its company; `client` keeps one of them."""
    from server.rules.elements import first_contact

    found: list[Contact | Company] = []
    if client in ("any", "contact") and (contact := await first_contact(element_type, element)) is not None:
        found.append(contact)
    if client in ("any", "company") and element.company_id:
        if (company := await Company.get_or_none(id=element.company_id)) is not None:
            found.append(company)
    return found


def addresses(row: Contact | Company, kind: str, *, address_type: str = "any") -> list[str]:
    """A client's email addresses or phone numbers (`kind`: email, phone) of one type (work, home, mobile, other),
    or all of them (any), first first."""
    entries = row.emails if kind == "email" else row.phones
    values: list[str] = []
    for entry in entries or []:
        value, entry_type = (entry, "work") if isinstance(entry, str) else (entry.get("value", ""), entry.get("type"))
        if value and address_type in ("any", entry_type):
            values.append(value)
    return values
