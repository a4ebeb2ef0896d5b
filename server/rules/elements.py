"""Leads and deals as the engine sees them: loading, typed field changes with audit, template context."""

import json
from collections.abc import Collection, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from server import db, events
from server.errors import FieldError, NotFound, ValidationFailed
from server.rules.metadata import METADATA
from server.models import (
    ELEMENT_MODELS,
    AuditEntry,
    Company,
    Contact,
    CustomField,
    Deal,
    DealContact,
    Element,
    Lead,
    Pipeline,
    Stage,
    TimelineEntry,
    User,
    model_for,
)

# Built-in fields an API client or a Modify element rule may change, with their types.
BUILTIN_FIELDS: dict[str, dict[str, str]] = {
    "lead": {
        "title": "string", "amount": "money", "currency": "currency", "source": "string",
        "is_repeat": "bool", "responsible": "user", "contact": "contact", "company": "company",
    },
    "deal": {
        "title": "string", "amount": "money", "currency": "currency", "close_date": "date",
        "responsible": "user", "company": "company",
    },
}
# Built-in fields stored as a foreign key `<name>_id`.
RELATIONS = ("responsible", "contact", "company")
_REFERENCE_MODELS = {"user": User, "contact": Contact, "company": Company}


async def load(element_type: str, element_id: int, *, lock: bool = False) -> Element:
    """The element, read. With `lock`, its row locked until the transaction ends: a second locked load in the
    same transaction gives the instance the first one read (changes go through it: `save`)."""
    locked: dict[tuple[str, int], Element] | None = db.unit_memo("locked_elements") if lock and db.in_unit() else None
    if locked is not None and (element_type, element_id) in locked:
        return locked[(element_type, element_id)]
    query = model_for(element_type).filter(id=element_id)
    if lock:
        query = query.select_for_update()
    element = await query.first()
    if element is None:
        raise NotFound(element_type, element_id)
    events.owner_known(element_type, element)
    if locked is not None:
        locked[(element_type, element_id)] = element
    return element


async def field_types(element_type: str, *, customs: list[CustomField] | None = None) -> dict[str, tuple[str, list[Any]]]:
    """Every changeable field of an element type: built-in and custom, with type and options."""
    types: dict[str, tuple[str, list[Any]]] = {k: (v, []) for k, v in BUILTIN_FIELDS[element_type].items()}
    for custom in customs if customs is not None else await METADATA.custom_fields(element_type):
        types.setdefault(custom.code, (custom.type, list(custom.options or [])))
    return types


# What the columns (and the JSON of custom values) can hold and give back: a value outside these
# bounds is refused before it is saved, because a stored value that cannot be read back breaks
# every list it appears in. Money is the `amount` column, DECIMAL(18, 2); numbers share its range.
MONEY_PLACES = 2
MONEY_MAX = Decimal("9999999999999999.99")  # 16 digits before the point, 2 after
NUMBER_PLACES = 6
NUMBER_MAX = Decimal("999999999999")  # 12 digits before the point, 6 after: 18 digits in all
STRING_MAX = 255
TEXT_MAX = 20_000
FIRST_DAY = date(1800, 1, 1)  # rule timing moves dates by up to 100,000 days: stay far from year 1 and 9999
LAST_DAY = date(2999, 12, 31)
ID_MAX = 2**31 - 1  # ids are 32-bit integer columns
MAX_FIELDS = 200  # fields in one change set: more is refused before any of them is looked at


def _decimal(value: Any, *, places: int, largest: Decimal) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, float):
        value = repr(value)  # the digits the client wrote, not the binary float's expansion
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"must be a number, not {value!r}") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if abs(number) > largest:
        raise ValueError(f"must be between -{largest} and {largest}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -places:
        if number != number.quantize(Decimal(1).scaleb(-places)):
            raise ValueError(f"must have at most {places} decimal places")
        return number.quantize(Decimal(1).scaleb(-places))
    return number.quantize(Decimal(1)) if exponent > 0 else number  # 1E+2 is stored as 100


def _day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


def reference_id(value: Any, kind: str) -> int:
    """An id as the database can hold it, or ValueError (`12abc`, `1e3`, 23 digits)."""
    if isinstance(value, bool):
        raise ValueError(f"must be the id of a {kind}")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= ID_MAX:
        raise ValueError(f"must be the id of a {kind}")
    return int(text)


async def coerce_value(field_type: str, options: list[Any], value: Any) -> Any:
    """A value checked and converted for its field type; ValueError says what is wrong."""
    if value is None or value == "":
        if field_type == "string" or field_type == "text":
            return "" if value == "" else None
        return None
    if field_type in ("string", "text"):
        if not isinstance(value, (str, int, float, Decimal)) or isinstance(value, bool):
            raise ValueError("must be text")
        text = str(value)
        limit = STRING_MAX if field_type == "string" else TEXT_MAX
        if len(text) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return text
    if field_type == "money":
        return _decimal(value, places=MONEY_PLACES, largest=MONEY_MAX)
    if field_type == "number":
        return _decimal(value, places=NUMBER_PLACES, largest=NUMBER_MAX)
    if field_type == "currency":
        if not (isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()):
            raise ValueError("must be a three-letter currency code such as EUR")
        return value.upper()
    if field_type == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "y"):
            return True
        if str(value).lower() in ("false", "no", "0", "n"):
            return False
        raise ValueError("must be true or false")
    if field_type == "date":
        if isinstance(value, datetime):
            return _day(value.date())
        if isinstance(value, date):
            return _day(value)
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"must be a date as YYYY-MM-DD, not {value!r}") from None
        return _day(day)
    if field_type == "datetime":
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"must be a date and time in ISO 8601, not {value!r}") from None
        _day(moment.date())
        return moment
    if field_type == "select":
        if isinstance(value, (dict, list)) or value not in options:
            raise ValueError(f"must be one of {', '.join(map(str, options))}")
        return value
    if field_type in _REFERENCE_MODELS:
        model = _REFERENCE_MODELS[field_type]
        ident = reference_id(value, field_type)
        if not await model.exists(id=ident):
            raise ValueError(missing_reference(field_type, ident))
        return ident
    if field_type == "booking":  # its value is the Booking rows of the field (rules/bookings.py)
        raise ValueError("holds bookings: book with the Book a resource action or the bookResource mutation")
    raise ValueError(f"fields of type '{field_type}' cannot be set here")


def missing_reference(kind: str, ident: int) -> str:
    """One message for a contact or company that does not exist and one the user may not see: no existence leak."""
    if kind in ("contact", "company"):
        return f"there is no {kind} {ident} you may link"
    return f"{kind} {ident} does not exist"


def column_max_length(owner: str, name: str) -> int | None:
    """The length a built-in text column holds (a lead's `source` 100, a contact's `name` 200)."""
    model = ELEMENT_MODELS.get(owner) or _REFERENCE_MODELS.get(owner)
    field = model._meta.fields_map.get(name) if model is not None else None
    return getattr(field, "max_length", None)


async def coerce_changes(element_type: str, changes: dict[str, Any], *, prefix: str = "fields") -> dict[str, Any]:
    """Check every field of a change set; all problems are reported together, nothing is applied."""
    return await coerce_field_map(changes, await field_types(element_type), coerce_value, owner=element_type,
                                  required="title", prefix=prefix)


async def coerce_field_map(
    changes: dict[str, Any], types: dict[str, tuple[str, list[Any]]], coerce: Any, *, owner: str, required: str,
    prefix: str = "fields",
) -> dict[str, Any]:
    """Typed values for a change set of a lead, deal, contact or company, or every problem at once."""
    if len(changes) > MAX_FIELDS:
        raise ValidationFailed.one(prefix, f"at most {MAX_FIELDS} fields at once, not {len(changes)}")
    errors: list[FieldError] = []
    coerced: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in types:
            errors.append(FieldError(f"{prefix}.{name}", f"{owner} has no field '{name}'"))
            continue
        try:
            coerced[name] = await coerce(*types[name], value)
        except ValueError as exc:
            errors.append(FieldError(f"{prefix}.{name}", str(exc)))
            continue
        limit = column_max_length(owner, name)
        if limit is not None and isinstance(coerced[name], str) and len(coerced[name]) > limit:
            errors.append(FieldError(f"{prefix}.{name}", f"must be at most {limit} characters"))
    if required in coerced and not coerced[required]:
        errors.append(FieldError(f"{prefix}.{required}", "must not be empty"))
    if errors:
        raise ValidationFailed(errors)
    return coerced


def to_json(value: Any) -> Any:
    """A field value as stored in JSON: decimals and dates as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


class FieldChange(NamedTuple):
    """One field that really changed, with its values before and after (as JSON values)."""

    name: str
    old: Any
    new: Any


async def apply_changes(
    element_type: str,
    element: Element,
    changes: dict[str, Any],
    *,
    actor_id: int | None,
    rule_run_id: int | None = None,
) -> list[FieldChange]:
    """Write already coerced values; each real change gets an audit row. Returns the changes made."""
    changed = await record_changes(element_type, element, changes, builtin=BUILTIN_FIELDS[element_type],
                                   relations=RELATIONS, actor_id=actor_id, rule_run_id=rule_run_id)
    if changed:
        await element_event(element_type, element, "updated", fields=[c.name for c in changed], actor_id=actor_id,
                            rule_run_id=rule_run_id)
    return changed


async def record_changes(
    record_type: str, row: Any, changes: dict[str, Any], *, builtin: Collection[str], relations: Collection[str],
    actor_id: int | None, rule_run_id: int | None, first_of_list: Mapping[str, str] | None = None,
) -> list[FieldChange]:
    """Set fields of a lead, deal, contact or company, with one audit row per real change.

    Built-in fields are columns (`<name>_id` for relations); `first_of_list` names set the value of the
    first typed entry `{"value", "type"}` of the list column `<name>s` (a contact's email), keeping its
    type, or add an entry of the type it maps to; anything else lives in `custom`.
    """
    custom = dict(row.custom or {})
    changed: list[FieldChange] = []
    for name, value in changes.items():
        if first_of_list and name in first_of_list:
            attr = f"{name}s"
            entries = [dict(e) for e in getattr(row, attr) or []]
            old = entries[0]["value"] if entries else None
            if old == value:
                continue
            if value is None:
                entries = entries[1:]
            else:  # the new first value, once: a later entry with the same value goes
                first = {**entries[0], "value": value} if entries else {"value": value, "type": first_of_list[name]}
                entries = [first] + [e for e in entries[1:] if e["value"].lower() != value.lower()]
            setattr(row, attr, entries)
        elif name in builtin:
            attr = f"{name}_id" if name in relations else name
            old = getattr(row, attr)
            if old == value:
                continue
            setattr(row, attr, value)
        else:
            old = custom.get(name)
            if old == to_json(value):
                continue
            custom[name] = to_json(value)
        changed.append(FieldChange(name, to_json(old), to_json(value)))
        await AuditEntry.create(
            element_type=record_type, element_id=row.id, field=name,
            old_value=json.dumps(to_json(old)), new_value=json.dumps(to_json(value)),
            actor_id=actor_id, rule_run_id=rule_run_id,
        )
    if changed:
        row.custom = custom
        await row.save()
    return changed


async def add_timeline_entry(
    element_type: str, element_id: int, kind: str, text: str, *, author_id: int | None, rule_run_id: int | None = None
) -> TimelineEntry:
    """A comment, history or automation entry on an element; live to `activityStream` subscribers."""
    entry = await TimelineEntry.create(element_type=element_type, element_id=element_id, kind=kind, text=text,
                                       author_id=author_id, rule_run_id=rule_run_id)
    await events.emit("timeline", {
        "id": entry.id, "kind": kind, "text": text, "author_id": author_id, "rule_run_id": rule_run_id,
        "created_at": entry.created_at.isoformat(),
    }, element_type=element_type, element_id=element_id)
    return entry


async def element_event(element_type: str, element: Element, change: str, **extra: Any) -> None:
    """The element was created, changed, moved or deleted: for `elementChanged` subscribers."""
    events.owner_known(element_type, element)
    await events.emit("element", {
        "change": change, "stage_id": element.stage_id, "pipeline_id": element.pipeline_id,
        "title": element.title, **extra,
    }, element_type=element_type, element_id=element.id, responsible_id=element.responsible_id)


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "email": user.email, "role": user.role}


# The typed addresses a client offers templates and conditions by name (rules/placeholders.py lists the same):
# the first of that type, or None.
TYPED_ADDRESSES = {"work_email": ("email", "work"), "home_email": ("email", "home"),
                   "mobile_phone": ("phone", "mobile"), "work_phone": ("phone", "work")}


def _client(row: Contact | Company | None, custom_codes: list[str]) -> dict[str, Any] | None:
    """A contact or company as plain values: `emails` / `phones` are the values first first, `email` / `phone`
    the first of them, `work_email` and the like the first of their type."""
    if row is None:
        return None
    lists = {"email": [e["value"] for e in row.emails or []], "phone": [p["value"] for p in row.phones or []]}
    typed = {name: next((e["value"] for e in (row.emails if kind == "email" else row.phones) or []
                         if e["type"] == address_type), None)
             for name, (kind, address_type) in TYPED_ADDRESSES.items()}
    return {
        **dict.fromkeys(custom_codes), **(row.custom or {}),  # a custom field without a value is empty, not missing
        "id": row.id, "name": row.name, "emails": lists["email"], "phones": lists["phone"],
        "email": lists["email"][0] if lists["email"] else None, "phone": lists["phone"][0] if lists["phone"] else None,
        **typed,
    }


async def first_contact(element_type: str, element: Element) -> Contact | None:
    if isinstance(element, Lead):
        return await Contact.get_or_none(id=element.contact_id) if element.contact_id else None
    link = await DealContact.filter(deal_id=element.id).order_by("position", "id").first()
    return await Contact.get_or_none(id=link.contact_id) if link else None


async def typed_custom_values(element_type: str, custom: dict[str, Any], *,
                              customs: list[CustomField] | None = None) -> dict[str, Any]:
    """Custom values as their types (stored as JSON text): numbers compare as numbers, dates as dates.
    `customs`: the element type's custom fields, when the caller has read them."""
    types = await field_types(element_type, customs=customs)
    typed: dict[str, Any] = {}
    for name, value in custom.items():
        field_type, options = types.get(name, ("string", []))
        try:
            typed[name] = await coerce_value(field_type, options, value) if field_type not in _REFERENCE_MODELS else value
        except ValueError:
            typed[name] = value
    return typed


async def build_context(element_type: str, element: Element, *, with_contact: bool = True) -> dict[str, Any]:
    """The element as plain data: what conditions compare and templates render. No ORM objects leak.
    Without `with_contact` its contact is left unread (None): for a caller whose templates never name it."""
    stage = await METADATA.stage(element.stage_id) or await Stage.get(id=element.stage_id).select_related("pipeline")
    pipeline = stage.pipeline if stage.pipeline_id == element.pipeline_id else await Pipeline.get(id=element.pipeline_id)
    responsible = await User.get_or_none(id=element.responsible_id) if element.responsible_id else None
    company = await Company.get_or_none(id=element.company_id) if element.company_id else None
    contact = await first_contact(element_type, element) if with_contact else None
    client_fields: dict[str, list[str]] = {"contact": [], "company": []}
    if contact is not None or company is not None:
        for kind, codes in client_fields.items():
            codes += [custom.code for custom in await METADATA.custom_fields(kind)]
    # Every custom field of the element type is there; one without a value is empty (None), not missing.
    customs = await METADATA.custom_fields(element_type)
    data: dict[str, Any] = {custom.code: None for custom in customs}
    data.update(await typed_custom_values(element_type, element.custom or {}, customs=customs))
    data.update({
        "id": element.id,
        "type": element_type,
        "title": element.title,
        "amount": element.amount,
        "currency": element.currency,
        "stage": {"id": stage.id, "code": stage.code, "name": stage.name, "semantic": stage.semantic},
        "pipeline": {"id": pipeline.id, "name": pipeline.name},
        "responsible": _person(responsible),
        "contact": _client(contact, client_fields["contact"]),
        "company": _client(company, client_fields["company"]),
        "custom": dict(element.custom or {}),
        "created_at": element.created_at,
        "waiting_for_customer": element.waiting_for_customer,
    })
    if isinstance(element, Lead):
        data.update({"source": element.source, "is_repeat": element.is_repeat})
    elif isinstance(element, Deal):  # Element is abstract: every element is a lead or a deal
        data["close_date"] = element.close_date
    return data
