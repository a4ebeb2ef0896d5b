"""SPEC §2 conditions: OR of AND groups of comparisons on the element, its links and earlier outputs."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from server import i18n
from server.rules.conditions import Comparison, compare, describe_condition, evaluate
from server.rules.placeholders import Record, Value
from web import locale

DEAL: dict[str, Any] = {
    "title": "Acme rollout",
    "amount": Decimal("5000.00"),
    "currency": "EUR",
    "close_date": date(2024, 5, 31),
    "created_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    "tags": ["vip", "b2b"],
    "contact": {"name": "Bea", "email": "bea@acme.example", "phone": None},
    "company": None,
    "rules": {"promo": {"code": "SUMMER24"}},
}


def holds(field: str, op: str, value: Any = None, data: dict[str, Any] = DEAL) -> bool:
    met, _ = evaluate([[Comparison.model_validate({"field": field, "op": op, "value": value})]], data)
    return met


# ---------------------------------------------------------------- operators


def test_empty_and_not_empty():
    assert holds("company", "empty")
    assert holds("contact.phone", "empty")
    assert holds("title", "not_empty")
    assert not holds("title", "empty")
    assert not holds("company", "not_empty")
    assert compare("", "empty", None) and compare([], "empty", None) and compare({}, "empty", None)


def test_eq_and_ne():
    assert holds("currency", "eq", "EUR")
    assert not holds("currency", "eq", "USD")
    assert holds("currency", "ne", "USD")
    assert not holds("currency", "ne", "EUR")


def test_greater_and_less():
    assert holds("amount", "gt", 4999)
    assert not holds("amount", "gt", 5000)
    assert holds("amount", "gte", 5000)
    assert holds("amount", "lt", 5000.01)
    assert not holds("amount", "lt", 5000)
    assert holds("amount", "lte", 5000)
    assert not holds("amount", "lte", 4999.99)


def test_contains_ignores_case_and_finds_list_items():
    assert holds("contact.email", "contains", "@ACME")
    assert not holds("contact.email", "contains", "@globex")
    assert holds("contact.email", "not_contains", "@globex")
    assert holds("tags", "contains", "vip")
    assert not holds("tags", "contains", "smb")
    assert holds("tags", "not_contains", "smb")


def test_in_and_not_in():
    assert holds("currency", "in", ["EUR", "CHF"])
    assert not holds("currency", "in", ["USD", "GBP"])
    assert holds("currency", "not_in", ["USD", "GBP"])
    assert not holds("currency", "not_in", ["EUR"])


def test_between_is_inclusive():
    assert holds("amount", "between", [5000, 6000])
    assert holds("amount", "between", [4000, 5000])
    assert holds("amount", "between", ["4000.50", "5000.00"])
    assert not holds("amount", "between", [5000.01, 6000])
    assert not holds("amount", "between", [1000, 4999.99])


@pytest.mark.parametrize(
    ("symbol", "name"),
    [("=", "eq"), ("==", "eq"), ("!=", "ne"), ("≠", "ne"), (">", "gt"), (">=", "gte"), ("≥", "gte"),
     ("<", "lt"), ("<=", "lte"), ("≤", "lte")],
)
def test_symbols_an_admin_types_are_stored_as_operator_names(symbol, name):
    assert Comparison.model_validate({"field": "amount", "op": symbol, "value": 1}).op == name


def test_symbols_compare_like_their_names():
    assert holds("amount", "≥", 5000)
    assert holds("amount", ">", 4999)
    assert holds("currency", "≠", "USD")
    assert not holds("amount", ">", 5000)


# ---------------------------------------------------------------- groups


def test_all_comparisons_of_a_group_must_hold():
    group = [Comparison(field="currency", op="eq", value="EUR"), Comparison(field="amount", op="gt", value=9000)]
    met, reason = evaluate([group], DEAL)
    assert not met
    assert "condition not met: amount is more than 9,000 (amount is 5,000)" in reason


def test_any_group_suffices():
    big = [Comparison(field="amount", op="gt", value=9000)]
    euro_vip = [Comparison(field="currency", op="eq", value="EUR"), Comparison(field="tags", op="contains", value="vip")]
    met, reason = evaluate([big, euro_vip], DEAL)
    assert met
    assert reason == "condition met: currency is “EUR” and tags contains “vip”"


def test_no_condition_always_holds():
    assert evaluate([], DEAL) == (True, "no condition")


def test_reason_names_each_failed_field_and_its_value():
    met, reason = evaluate(
        [[Comparison(field="amount", op="gt", value=5000)], [Comparison(field="contact.email", op="contains", value="@globex")]],
        DEAL,
    )
    assert not met
    assert reason.startswith("condition not met: ")
    assert "amount is more than 5,000 (amount is 5,000)" in reason
    assert "; or contact.email contains “@globex” (contact.email is “bea@acme.example”)" in reason


# ---------------------------------------------------------------- types


def test_decimal_amount_compares_with_int_and_text():
    assert not holds("amount", "gt", 5000)
    assert holds("amount", "eq", 5000)
    assert holds("amount", "eq", "5000")
    assert holds("amount", "gte", "5000")
    assert holds("amount", "in", [5000, 6000])
    assert not holds("amount", "ne", 5000)


def test_text_against_a_number_is_simply_false():
    assert not holds("title", "gt", 5)
    assert not holds("title", "lt", 5)


def test_date_field_compares_with_iso_dates():
    assert holds("close_date", "gt", "2024-05-30")
    assert holds("close_date", "eq", "2024-05-31")
    assert not holds("close_date", "lt", "2024-05-31")
    assert holds("close_date", "between", ["2024-05-01", "2024-05-31"])


def test_datetime_field_compares_with_iso_datetimes():
    assert holds("created_at", "gt", "2024-05-01T11:00:00+00:00")
    assert holds("created_at", "lt", "2024-05-01T13:00:00+00:00")


def test_datetime_field_compares_with_a_plain_date():
    # Element datetimes are timezone-aware; a plain date in a condition is read as UTC.
    assert holds("created_at", "gt", "2024-01-01"), "created_at > '2024-01-01' should hold for 2024-05-01 12:00 UTC"
    assert holds("created_at", "between", ["2024-01-01", "2024-12-31"])


# ---------------------------------------------------------------- paths and missing values


def test_nested_paths_reach_contact_and_earlier_outputs():
    assert holds("contact.email", "eq", "bea@acme.example")
    assert holds("rules.promo.code", "eq", "SUMMER24")
    assert holds("rules.promo.code", "not_empty")


def test_missing_values_are_empty_and_never_greater_or_less():
    for path in ("nothing", "contact.fax", "company.email", "rules.later.code"):
        assert holds(path, "empty")
        assert not holds(path, "not_empty")
        assert not holds(path, "gt", 0)
        assert not holds(path, "lt", 0)
        assert not holds(path, "eq", "x")
        assert holds(path, "ne", "x")
        assert not holds(path, "contains", "x")
        assert holds(path, "not_contains", "x")
        assert not holds(path, "in", ["x"])
        assert holds(path, "not_in", ["x"])
        assert not holds(path, "between", [0, 1])


def test_missing_value_reason_says_it_is_none():
    met, reason = evaluate([[Comparison(field="company.name", op="eq", value="Acme")]], DEAL)
    assert not met
    assert reason == "condition not met: company.name is “Acme” (company.name is empty)"


# ---------------------------------------------------------------- refused at save


@pytest.mark.parametrize(
    ("comparison", "message"),
    [
        ({"field": "amount", "op": "between", "value": [1]}, "two bounds"),
        ({"field": "amount", "op": "between", "value": [1, 2, 3]}, "two bounds"),
        ({"field": "amount", "op": "between", "value": 5}, "two bounds"),
        ({"field": "amount", "op": "between"}, "two bounds"),
        ({"field": "currency", "op": "in", "value": "EUR"}, "list of values"),
        ({"field": "currency", "op": "not_in", "value": "EUR"}, "list of values"),
        ({"field": "amount", "op": "~", "value": 1}, "Input should be"),
        ({"field": "amount", "op": "like", "value": 1}, "Input should be"),
        ({"field": "  ", "op": "eq", "value": 1}, "must name an element field"),
        ({"field": "amount", "op": "eq", "value": 1, "extra": 2}, "Extra inputs"),
    ],
)
def test_invalid_comparisons_are_refused(comparison, message):
    with pytest.raises(ValidationError) as refused:
        Comparison.model_validate(comparison)
    assert message in str(refused.value)


def test_describe_reads_as_words():
    assert Comparison(field="amount", op="gte", value=5).describe() == "amount is at least 5"
    assert Comparison(field="amount", op="ne", value=5).describe() == "amount is not 5"
    assert Comparison(field="tags", op="not_contains", value="x").describe() == "tags does not contain “x”"
    assert Comparison(field="title", op="not_empty").describe() == "title is not empty"
    assert Comparison(field="source", op="in", value=["web", "fair"]).describe() == "source is one of “web”, “fair”"


DEAL_NAMES = Record({"amount": Value("money"), "close_date": Value("date"), "is_repeat": Value("bool"),
                     "seats": Value("number")})


def test_a_stored_condition_reads_with_its_values_formatted_by_field_type():
    condition = [[{"field": "amount", "op": "gte", "value": "2800"}, {"field": "is_repeat", "op": "eq", "value": True}],
                 [{"field": "close_date", "op": "between", "value": ["2026-01-01", "2026-03-31"]}]]
    assert describe_condition(condition, DEAL_NAMES) == (
        "(amount is at least €2,800.00 and is_repeat is yes) or (close_date is between Jan 1, 2026 and Mar 31, 2026)")
    assert "Decimal" not in describe_condition([[{"field": "seats", "op": "gt", "value": 1200.5}]], DEAL_NAMES)


def test_a_german_viewer_reads_the_condition_in_german():
    i18n.install(locale.load())
    condition = [[{"field": "amount", "op": "gte", "value": "2800"}, {"field": "source", "op": "empty"}]]
    with i18n.viewing("de", "Europe/Berlin"):
        assert describe_condition(condition, DEAL_NAMES) == "amount ist mindestens 2.800,00\xa0€ und source ist leer"


def test_the_stored_explanation_stays_english_for_a_german_viewer():
    i18n.install(locale.load())
    with i18n.viewing("de", "Europe/Berlin"):
        _, reason = evaluate([[Comparison(field="amount", op="gt", value=9000)]], DEAL)
    assert reason == "condition not met: amount is more than 9,000 (amount is 5,000)"


def test_custom_number_fields_compare_as_numbers():
    # Custom number and money values are stored as text; compared with numbers, they compare as numbers.
    custom = {"seats": "25", "budget": "1200.50"}
    assert holds("seats", "gt", 5, custom), "a custom number field holding 25 must be > 5"
    assert holds("seats", "between", [1, 100], custom)
    assert holds("budget", "gte", 1200, custom)
