"""What a rule's templates and conditions may name: the shape of the run context, with field types.

The engine builds the values (`elements.build_context`, `engine._template_context`); this module
describes the same names without an element, so that a rule naming something that will never be
there (`{{dael.title}}`, `{{rules.nokey.code}}`, `amount > abc`) is refused when it is saved.
"""

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.models import CustomField
from server.rules import elements


@dataclass(frozen=True)
class Value:
    """A field's value; `type` is a field type (string, money, date, select, …) or "any"."""

    type: str = "any"
    options: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Record:
    """Named fields. `item` says what its names are (field, rule, output) for messages;
    `empty` is set when the record itself may be missing (no company linked) and says why."""

    fields: dict[str, "Record | Value"] = field(default_factory=dict)
    item: str = "field"
    open: bool = False  # any name accepted (the raw custom values)
    empty: str | None = None
    hint: str | None = None  # said when an unknown name has no close match


Shape = Record | Value

SYSTEM_VALUES = ("now", "today")


def _person(empty: str) -> Record:
    return Record({"id": Value("int"), "name": Value("string"), "email": Value("string"), "role": Value("string")},
                  empty=empty)


async def _custom(entity_type: str) -> dict[str, Shape]:
    return {c.code: Value(c.type, tuple(c.options or [])) for c in await CustomField.filter(entity_type=entity_type)}


async def _client(client_type: str, element_type: str) -> Record:
    fields: dict[str, Shape] = {
        "id": Value("int"), "name": Value("string"), "emails": Value("list"), "phones": Value("list"),
        "email": Value("string"), "phone": Value("string"),
        **{name: Value("string") for name in elements.TYPED_ADDRESSES},
    }
    for name, value in (await _custom(client_type)).items():
        fields.setdefault(name, value)
    what = "first contact" if client_type == "contact" and element_type == "deal" else client_type
    return Record(fields, empty=f"the {element_type} has no {what}")


async def element_record(element_type: str) -> Record:
    """The element as `elements.build_context` gives it: built-in fields, links, custom fields."""
    fields: dict[str, Shape] = {
        "id": Value("int"), "type": Value("string"), "title": Value("string"), "amount": Value("money"),
        "currency": Value("currency"),
        "stage": Record({"id": Value("int"), "code": Value("string"), "name": Value("string"),
                         "semantic": Value("string")}),
        "pipeline": Record({"id": Value("int"), "name": Value("string")}),
        "responsible": _person(f"the {element_type} has no responsible"),
        "contact": await _client("contact", element_type),
        "company": await _client("company", element_type),
        "custom": Record(open=True),
        "created_at": Value("datetime"),
        "waiting_for_customer": Value("bool"),
    }
    if element_type == "lead":
        fields.update({"source": Value("string"), "is_repeat": Value("bool")})
    else:
        fields["close_date"] = Value("date")
    for name, (field_type, options) in (await elements.field_types(element_type)).items():
        fields.setdefault(name, Value(field_type, tuple(options)))
    return Record(fields)


async def run_context(element_type: str, rules_above: Sequence[tuple[str, Sequence[str]]]) -> Record:
    """Every name a rule's templates and conditions see: the element (also under its type and as
    `element`), the outputs of the rules above it (key → declared outputs), `now` and `today`."""
    element = await element_record(element_type)
    rules = Record(
        {key: Record({o: Value() for o in outputs}, item="output",
                     hint=f"its outputs: {', '.join(outputs)}" if outputs else "it has no outputs")
         for key, outputs in rules_above},
        item="rule",
        hint=f"rules above: {', '.join(k for k, _ in rules_above)}" if rules_above else "there is no rule above it",
    )
    return Record({**element.fields, element_type: element, "element": element, "rules": rules,
                   "now": Value("string"), "today": Value("string")},
                  hint=f"names start with {element_type}., rules., or are now / today")


def resolve(shape: Record, path: Sequence[str]) -> tuple[Shape | None, str | None]:
    """What `path` names in `shape`, or None and a message saying which step is unknown.

    Below a plain value (`title.upper`) nothing is checked: that is the value's own attribute.
    """
    current: Shape = shape
    for index, part in enumerate(path):
        if isinstance(current, Value) or current.open:
            return Value(), None
        if part not in current.fields:
            return None, _unknown(current, path, index)
        current = current.fields[part]
    return current, None


def _unknown(record: Record, path: Sequence[str], index: int) -> str:
    part, where = path[index], ".".join(path[:index])
    if index == 0:
        message = f"unknown name '{part}'"
    elif record.item == "rule":
        message = f"no rule above this one in the stage has the key '{part}'"
    elif record.item == "output":
        message = f"rule '{path[index - 1]}' has no output '{part}'"
    else:
        message = f"{where} has no field '{part}'"
    close = difflib.get_close_matches(part, list(record.fields), n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean '{where + '.' if where else ''}{close[0]}'?"
    return f"{message} ({record.hint})" if record.hint else message
