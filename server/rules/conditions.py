"""Rule conditions: OR of AND groups of comparisons, evaluated against a rendered context."""

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from server import i18n
from server.errors import FieldError, field_errors
from server.i18n import N_
from server.i18n import gettext as _
from server.rules.placeholders import Record, Shape, Value, resolve

Operator = Literal[
    "empty", "not_empty", "eq", "ne", "gt", "gte", "lt", "lte",
    "contains", "not_contains", "in", "not_in", "between",
]

# Symbols an admin may type are accepted and stored as the operator's name.
OPERATOR_ALIASES = {"=": "eq", "==": "eq", "!=": "ne", "≠": "ne", ">": "gt", ">=": "gte", "≥": "gte",
                    "<": "lt", "<=": "lte", "≤": "lte"}
SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
# Every operator, in the order the condition builder offers them, with the words it shows.
OPERATOR_LABELS: dict[Operator, str] = {
    "eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "contains": "contains",
    "not_contains": "does not contain", "in": "is one of", "not_in": "is none of", "between": "is between",
    "empty": "is empty", "not_empty": "is not empty",
}
# The words a condition is read out in (Comparison.describe), translated for the viewer.
OPERATOR_WORDS: dict[Operator, str] = {
    "eq": N_("is"), "ne": N_("is not"), "gt": N_("is more than"), "gte": N_("is at least"), "lt": N_("is less than"),
    "lte": N_("is at most"), "contains": N_("contains"), "not_contains": N_("does not contain"),
    "in": N_("is one of"), "not_in": N_("is none of"), "between": N_("is between"), "empty": N_("is empty"),
    "not_empty": N_("is not empty"),
}
LIST_OPERATORS: tuple[Operator, ...] = ("in", "not_in", "between")  # compare with a list of values
NO_VALUE_OPERATORS: tuple[Operator, ...] = ("empty", "not_empty")  # compare with nothing


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    op: Operator
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _alias_operator(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("op") in OPERATOR_ALIASES:
            data = {**data, "op": OPERATOR_ALIASES[data["op"]]}
        return data

    @model_validator(mode="after")
    def _value_fits_operator(self) -> "Comparison":
        if not self.field.strip():
            raise ValueError("field must name an element field, e.g. 'amount' or 'contact.email'")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("'between' needs a value of two bounds: [low, high]")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a list of values")
        return self

    def describe(self, shape: "Shape | None" = None) -> str:
        """In words for the viewer: "amount is at least 2,800.00 €", values formatted by the field's type."""
        if self.op in NO_VALUE_OPERATORS:
            return f"{self.field} {_(OPERATOR_WORDS[self.op])}"
        if self.op == "between" and isinstance(self.value, list) and len(self.value) == 2:
            low, high = (shown(v, shape) for v in self.value)
            return f"{self.field} " + _("is between %(low)s and %(high)s") % {"low": low, "high": high}
        return f"{self.field} {_(OPERATOR_WORDS[self.op])} {shown(self.value, shape)}"


Condition = list[list[Comparison]]


def lookup(context: dict[str, Any], path: str) -> Any:
    """`contact.email` → context['contact']['email']; a missing step gives None."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _coerce(sample: Any, value: Any) -> Any:
    """Bring a configured value to the type of the element's value, so 5000 compares to Decimal."""
    if value is None or isinstance(sample, bool):
        return value
    try:
        if isinstance(sample, (int, float, Decimal)) and not isinstance(value, bool):
            return Decimal(str(value))
        if isinstance(sample, datetime) and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if sample.tzinfo is not None and parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)  # a plain date or time in a condition means UTC
            return parsed
        if isinstance(sample, date) and isinstance(value, str):
            return date.fromisoformat(value)
    except (InvalidOperation, ValueError):
        return value
    return value


def _number(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _numeric_text(actual: Any, expected: Any) -> Any:
    """Text that holds a number compares as a number when the condition compares with numbers."""
    bounds = expected if isinstance(expected, list) else [expected]
    if isinstance(actual, str) and bounds and all(
        isinstance(b, (int, float, Decimal)) and not isinstance(b, bool) for b in bounds
    ):
        try:
            return Decimal(actual)
        except InvalidOperation:
            return actual
    return actual


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "empty":
        return _is_empty(actual)
    if op == "not_empty":
        return not _is_empty(actual)
    if op in ("contains", "not_contains"):
        if isinstance(actual, (list, tuple)):
            found = expected in actual or str(expected) in [str(a) for a in actual]
        else:
            found = str(expected).lower() in ("" if actual is None else str(actual)).lower()
        return found if op == "contains" else not found
    if op in ("in", "not_in"):
        options = [_coerce(_number(actual), v) for v in expected]
        found = _number(actual) in options or str(actual) in [str(v) for v in expected]
        return found if op == "in" else not found
    if op == "ne":
        return not compare(actual, "eq", expected)
    if actual is None:
        return op == "eq" and _is_empty(expected)
    actual = _number(_numeric_text(actual, expected))
    try:
        if op == "between":
            low, high = (_coerce(actual, v) for v in expected)
            # The values are JSON and typed Any, so their comparisons are too: these locals say what they yield.
            within: bool = low <= actual <= high
            return within
        other = _coerce(actual, expected)
        if op == "eq":
            return actual == other or str(actual) == str(other)
        ordered: bool = {"gt": actual > other, "gte": actual >= other, "lt": actual < other, "lte": actual <= other}[op]
        return ordered
    except TypeError:
        return False


QUOTES = {"en": ("“", "”"), "de": ("„", "“")}


def shown(value: Any, shape: "Shape | None" = None) -> str:
    """A value of a condition for people: money with the currency, numbers and dates in the viewer's way,
    text in quotes, nothing as "empty"; never a Python repr."""
    kind = shape.type if isinstance(shape, Value) else None
    if value is None or value == "":
        return _("empty")
    if isinstance(value, list):
        return ", ".join(shown(v, shape) for v in value)
    if isinstance(value, bool) or kind == "bool":
        truth = value if isinstance(value, bool) else str(value).lower() in ("true", "yes", "1")
        return i18n.yes_no(truth)
    if kind == "money" and i18n.decimal_of(value) is not None:
        return i18n.money(value)
    if kind in _NUMBER_TYPES or (kind in (None, "any") and isinstance(value, (int, float, Decimal))):
        if i18n.decimal_of(value) is not None:
            return i18n.number(value)
    if isinstance(value, datetime) or kind == "datetime":
        return i18n.when(value)
    if isinstance(value, date) or kind == "date":
        return i18n.format_date(value)
    start, end = QUOTES.get(i18n.current_locale.get(), QUOTES["en"])
    return f"{start}{value}{end}"


def evaluate(condition: Condition, context: dict[str, Any]) -> tuple[bool, str]:
    """True if any group has all comparisons true. The text explains the outcome; it is stored with the run,
    so it is in English and UTC whoever caused the run."""
    with i18n.viewing("en", UTC):
        if not condition:
            return True, "no condition"
        failures: list[str] = []
        for group in condition:
            failed = [c for c in group if not compare(lookup(context, c.field), c.op, c.value)]
            if not failed:
                return True, "condition met: " + " and ".join(c.describe() for c in group)
            c = failed[0]
            failures.append(f"{c.describe()} ({c.field} is {shown(lookup(context, c.field))})")
        return False, "condition not met: " + "; or ".join(failures)


_NUMBER_TYPES = ("number", "money", "int")


def comparison_problems(comparison: Comparison, names: Record) -> list[tuple[str, str]]:
    """(part, message) when a comparison names a field the element will not have, or compares a
    field with a value of the wrong type (`amount > abc`); `part` is `field` or `value`."""
    shape, unknown = resolve(names, comparison.field.split("."))
    if unknown:
        return [("field", unknown)]
    if comparison.op in NO_VALUE_OPERATORS or shape is None:
        return []
    if isinstance(shape, Record):
        example = next(iter(shape.fields), "name")
        return [("field", f"'{comparison.field}' is a linked record: compare one of its fields "
                          f"(e.g. '{comparison.field}.{example}') or use is empty / is not empty")]
    if comparison.op in ("contains", "not_contains"):
        return []
    values = comparison.value if isinstance(comparison.value, list) else [comparison.value]
    for value in values:
        problem = _value_problem(shape, value)
        if problem:
            return [("value", f"{comparison.field} is a {shape.type} field: {problem}")]
    return []


def _value_problem(shape: Value, value: Any) -> str | None:
    if value is None:
        return None
    if shape.type in _NUMBER_TYPES:
        if isinstance(value, bool):
            return f"{value!r} is not a number"
        try:
            if Decimal(str(value)).is_finite():
                return None
        except InvalidOperation:
            pass
        return f"{value!r} is not a number"
    if shape.type in ("date", "datetime"):
        if isinstance(value, date):
            return None
        try:
            (date.fromisoformat if shape.type == "date" else datetime.fromisoformat)(str(value))
        except ValueError:
            example = "YYYY-MM-DD" if shape.type == "date" else "YYYY-MM-DD or YYYY-MM-DDTHH:MM"
            return f"{value!r} is not a date ({example})"
        return None
    if shape.type == "bool" and not isinstance(value, bool) and str(value).lower() not in _BOOL_TEXT:
        return f"{value!r} is not true or false"
    if shape.type == "select" and shape.options and str(value) not in [str(o) for o in shape.options]:
        return f"{value!r} is not one of {', '.join(map(str, shape.options))}"
    return None


_BOOL_TEXT = ("true", "false", "yes", "no", "1", "0")


def describe_condition(condition: list[list[dict[str, Any]]], names: Record | None = None) -> str:
    """A stored condition in words for the viewer: "amount is at least 2,800.00 € and source is “web”", groups
    joined by "or". `names` (the shape of what the condition may name) types the values."""
    groups = []
    for group in condition or []:
        parts = []
        for comparison in group:
            try:
                parsed = Comparison.model_validate(comparison)
            except ValueError:
                parts.append(_("a comparison that no longer validates: edit it"))
                continue
            shape = resolve(names, parsed.field.split("."))[0] if names is not None else None
            parts.append(parsed.describe(shape))
        joiner = " " + _("and") + " "  # no f-string: the extraction must see the call
        groups.append(joiner.join(parts))
    if len(groups) > 1:
        return (" " + _("or") + " ").join(f"({g})" for g in groups)
    return groups[0] if groups else ""


def checked_condition(condition: Any, names: Record) -> tuple[list[list[dict[str, Any]]], list[FieldError]]:
    """A condition as a client submitted it, checked against what it may name (a rule's or a trigger's): the
    groups as stored, and a FieldError per problem (`condition.<group>.<comparison>.<part>`)."""
    if not isinstance(condition, list) or not all(isinstance(group, list) for group in condition):
        return [], [FieldError("condition", "must be a list of groups, each a list of comparisons")]
    checked: list[list[dict[str, Any]]] = []
    errors: list[FieldError] = []
    for g, group in enumerate(condition):
        row = []
        for c, comparison in enumerate(group):
            try:
                parsed = Comparison.model_validate(comparison)
            except ValidationError as exc:
                errors += field_errors(exc, f"condition.{g}.{c}")
                continue
            errors += [FieldError(f"condition.{g}.{c}.{part}", message)
                       for part, message in comparison_problems(parsed, names)]
            row.append(parsed.model_dump(mode="json"))
        if row:
            checked.append(row)
    return checked, errors
