"""Contacts and companies as rules change them: typed fields (built-in and custom) with an audit trail, and
their typed email addresses and phone numbers.

Audit rows use element_type "contact" / "company", so a client's changes are attributed like a deal's.
A client's `emails` / `phones` are lists of `{"value": …, "type": …}`, first first: emails as written (stripped;
compared lower-cased elsewhere), phone numbers in E.164 (`+493055500100`).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers

from server.config import settings
from server.errors import ActionError, FieldError, ValidationFailed
from server.kinds import AddressKind, EmailType, PhoneType
from server.models import Company, Contact, CustomField
from server.rules.elements import coerce_field_map, coerce_value, record_changes

CLIENT_MODELS: dict[str, type[Contact] | type[Company]] = {"contact": Contact, "company": Company}

# `email` / `phone` set the first address / number, keeping its type (a client without one gets a work entry);
# the others stay.
BUILTIN_FIELDS: dict[str, dict[str, str]] = {
    "contact": {"name": "string", "email": "email", "phone": "phone", "company": "company", "responsible": "user"},
    "company": {"name": "string", "email": "email", "phone": "phone", "responsible": "user"},
}
FIRST_ENTRY_TYPE = {"email": EmailType.work.value, "phone": PhoneType.work.value}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

MAX_ADDRESSES = 20  # email addresses, and phone numbers, per client
ADDRESS_MAX_LENGTH = 320  # an email address's longest (RFC 3696: 64 + @ + 255), and far above any number
ADDRESS_TYPES: dict[AddressKind, type[EmailType] | type[PhoneType]] = {
    AddressKind.email: EmailType, AddressKind.phone: PhoneType,
}
LIST_FIELDS = {AddressKind.email: "emails", AddressKind.phone: "phones"}


@dataclass(frozen=True)
class Address:
    """One email address or phone number of a client, as a client writes it (checked by `typed_addresses`)."""

    value: str
    type: str = "work"


def email_value(text: str) -> str:
    """An email address as stored: stripped, case kept (for display). ValueError if it is not one."""
    address = text.strip()
    if len(address) > ADDRESS_MAX_LENGTH:
        raise ValueError(f"must be at most {ADDRESS_MAX_LENGTH} characters")
    if not _EMAIL.match(address):
        raise ValueError("not a valid email address")
    return address


class NotAPhoneNumber(ValueError):
    """`parsed`: False when the text is no number at all, True when it is one but not a valid number there."""

    def __init__(self, *, parsed: bool) -> None:
        self.parsed = parsed
        super().__init__("not a valid phone number" if parsed else "not a phone number")


def e164(text: str, *, region: str | None = None) -> str:
    """A phone number in E.164 (+49301234567), one without a country code read as a number of `region` (default:
    PIPEWRIGHT_DEFAULT_REGION). The one place numbers are parsed: NotAPhoneNumber otherwise."""
    try:
        number = phonenumbers.parse(text, (region or settings().default_region).upper())
    except phonenumbers.NumberParseException:
        raise NotAPhoneNumber(parsed=False) from None
    if not phonenumbers.is_valid_number(number):
        raise NotAPhoneNumber(parsed=True)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_value(text: str, *, region: str | None = None) -> str:
    """A client's phone number as stored: E.164. ValueError if it is too long or no valid number."""
    if len(text) > ADDRESS_MAX_LENGTH:
        raise ValueError(f"must be at most {ADDRESS_MAX_LENGTH} characters")
    try:
        return e164(text, region=region)
    except NotAPhoneNumber:
        raise ValueError("not a valid phone number") from None


def phone_type(e164: str) -> PhoneType:
    """A stored number's type when nobody said: mobile where its numbering plan says so, else work."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return PhoneType.mobile if kind == phonenumbers.PhoneNumberType.MOBILE else PhoneType.work


def address_value(kind: AddressKind, text: str) -> str:
    return email_value(text) if kind == AddressKind.email else phone_value(text)


def typed_addresses(kind: AddressKind, entries: Sequence[Address], *, field: str) -> list[dict[str, str]]:
    """A client's list of addresses or numbers as stored, or ValidationFailed naming every bad entry
    (`phones.1.value: not a valid phone number`). Nothing is half-taken: one bad entry refuses the list."""
    if len(entries) > MAX_ADDRESSES:
        what = "email addresses" if kind == AddressKind.email else "phone numbers"
        raise ValidationFailed.one(field, f"at most {MAX_ADDRESSES} {what} per client, not {len(entries)}")
    allowed = ADDRESS_TYPES[kind]
    errors: list[FieldError] = []
    stored: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{field}.{index}"
        if entry.type not in {t.value for t in allowed}:
            errors.append(FieldError(f"{where}.type", f"must be one of {', '.join(allowed)}"))
        if not entry.value.strip():
            errors.append(FieldError(f"{where}.value", "must not be empty"))
            continue
        try:
            value = address_value(kind, entry.value)
        except ValueError as exc:
            errors.append(FieldError(f"{where}.value", str(exc)))
            continue
        key = value.lower()
        if key in seen:
            errors.append(FieldError(f"{where}.value", f"is already entry {seen[key]}"))
            continue
        seen[key] = index
        stored.append({"value": value, "type": entry.type})
    if errors:
        raise ValidationFailed(errors)
    return stored


def addresses(row: Contact | Company, kind: str, *, address_type: str = "any") -> list[str]:
    """A client's email addresses or phone numbers (`kind`: email, phone) of one type (work, home, mobile, other),
    or all of them (any), first first."""
    entries = row.emails if kind == AddressKind.email else row.phones
    return [e["value"] for e in entries or [] if address_type in ("any", e["type"])]


def first_address(row: Contact | Company, kind: str, *, address_type: str = "any") -> str | None:
    found = addresses(row, kind, address_type=address_type)
    return found[0] if found else None


async def field_types(client_type: str) -> dict[str, tuple[str, list[Any]]]:
    types: dict[str, tuple[str, list[Any]]] = {k: (v, []) for k, v in BUILTIN_FIELDS[client_type].items()}
    for custom in await CustomField.filter(entity_type=client_type):
        types.setdefault(custom.code, (custom.type, list(custom.options or [])))
    return types


async def coerce_client_value(field_type: str, options: list[Any], value: Any) -> Any:
    if field_type in ("email", "phone"):
        text = str(value or "").strip()
        if not text:
            return None
        try:
            return address_value(AddressKind(field_type), text)
        except ValueError as exc:  # the value may come from a template: say what it was
            raise ValueError(f"{exc}: {value!r}") from None
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
                                   relations=("company", "responsible"), first_of_list=FIRST_ENTRY_TYPE,
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


async def client_address(element_type: str, element: Any, kind: str, *, client: str = "any",
                         address_type: str = "any") -> tuple[str, Contact | Company]:
    """The first email address or phone number (`kind`) of the element's clients, in `element_clients` order, of
    `address_type`; with the client it belongs to. ActionError saying what is missing when there is none."""
    for row in await element_clients(element_type, element, client=client):
        if found := addresses(row, kind, address_type=address_type):
            return found[0], row
    which = "" if address_type == "any" else f"{address_type} "
    whose = {"any": "contact or company", "contact": "contact", "company": "company"}[client]
    what = "email address" if kind == "email" else "phone number"
    raise ActionError(f"the {element_type} has no {whose} with a {which}{what}")
