"""SPEC §2 templates: element fields, earlier outputs and system values; sandboxed, bounded output."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from server.errors import ActionError
from server.rules.actions.add_comment import EntryParams
from server.rules.context import RunContext
from server.rules.engine import render_params
from server.rules.templates import MAX_OUTPUT_CHARS, check, render

DEAL: dict[str, Any] = {
    "id": 7,
    "title": "Acme rollout",
    "amount": Decimal("5000.00"),
    "close_date": None,
    "responsible": {"id": 1, "name": "Ann", "email": "ann@example.com", "role": "manager"},
    "contact": {"id": 3, "name": "Bea", "email": "bea@acme.example", "phone": None, "emails": ["bea@acme.example"]},
    "company": None,
}
# The shape the engine gives a run: the element under its type and as `element`, outputs under `rules`.
CONTEXT: dict[str, Any] = {
    **DEAL,
    "deal": DEAL,
    "element": DEAL,
    "rules": {"promo": {"code": "SUMMER24"}, "task": {"task_id": 12}},
    "now": "2024-05-03T16:30:00+00:00",
    "today": "2024-05-03",
}


def test_text_without_placeholders_is_kept_as_is():
    assert render("Call the customer back.", CONTEXT) == "Call the customer back."


def test_element_fields_render():
    assert render("{{deal.title}} for {{deal.amount}} EUR", CONTEXT) == "Acme rollout for 5000.00 EUR"
    assert render("{{ deal.contact.email }} / {{deal.responsible.name}}", CONTEXT) == "bea@acme.example / Ann"
    assert render("{{element.title}} = {{title}}", CONTEXT) == "Acme rollout = Acme rollout"


def test_outputs_of_earlier_rules_render():
    assert render("Your code: {{rules.promo.code}} (task {{rules.task.task_id}})", CONTEXT) == "Your code: SUMMER24 (task 12)"


def test_system_values_render():
    assert render("{{today}} {{now}}", CONTEXT) == "2024-05-03 2024-05-03T16:30:00+00:00"


def test_missing_values_render_empty():
    assert render("[{{deal.nothing}}]", CONTEXT) == "[]"
    assert render("[{{deal.company.name}}]", CONTEXT) == "[]"
    assert render("[{{rules.later.code}}]", CONTEXT) == "[]"
    assert render("[{{ no.such.thing.at.all }}]", CONTEXT) == "[]"


def test_empty_field_values_render_empty():
    # A field that exists but has no value (a deal without close date, a contact without phone)
    # renders empty, not as the text "None".
    assert render("[{{deal.contact.phone}}]", CONTEXT) == "[]", "an empty phone must not render as 'None'"
    assert render("[{{deal.close_date}}]", CONTEXT) == "[]"


async def test_template_params_render_before_the_action_runs():
    params = EntryParams(text="Deal {{deal.title}}: code {{rules.promo.code}}")
    ctx = RunContext(run=None, element_type="deal", element=None, actor_id=None, load_context=_context)  # type: ignore[arg-type]
    assert (await render_params(params, ctx)).text == "Deal Acme rollout: code SUMMER24"


async def _context() -> dict:
    return CONTEXT


# ---------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ deal.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ self.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ config }}{{ request }}",
    ],
)
def test_sandbox_gives_no_way_out(template):
    """Dunder access and unknown globals are refused (ActionError) or render nothing; never a class or module."""
    try:
        output = render(template, CONTEXT)
    except ActionError as refused:
        assert "unsafe" in str(refused) or "could not be rendered" in str(refused)
    else:
        assert output == ""


def test_sandbox_refuses_to_change_the_context():
    with pytest.raises(ActionError, match="unsafe"):
        render("{{ deal.update({'title': 'hacked'}) }}", CONTEXT)
    assert DEAL["title"] == "Acme rollout"
    with pytest.raises(ActionError, match="unsafe"):
        render("{{ deal.contact.emails.append('x@evil.example') }}", CONTEXT)
    assert DEAL["contact"]["emails"] == ["bea@acme.example"]


def test_output_over_the_limit_fails():
    assert MAX_OUTPUT_CHARS == 65_536
    with pytest.raises(ActionError, match="template output exceeds 65536 characters"):
        render("{% for i in range(70000) %}x{% endfor %}", CONTEXT)
    with pytest.raises(ActionError, match="exceeds"):
        render("{{ deal.title * 10000 }}", CONTEXT)


def test_output_at_the_limit_is_fine():
    assert len(render("{{ 'x' * 65536 }}", CONTEXT)) == 65_536


def test_a_broken_template_at_run_time_fails_the_run():
    with pytest.raises(ActionError, match="template could not be rendered"):
        render("{{ deal.title ", CONTEXT)


# ---------------------------------------------------------------- check at save time


def test_check_accepts_valid_templates():
    check("Hello {{ deal.contact.name }}, {% if deal.amount %}{{ deal.amount }}{% endif %}")
    check("no placeholders at all")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {{ deal.title", "template error on line 1: unexpected end of template"),
        ("{% if %}yes{% endif %}", "template error on line 1: Expected an expression"),
        ("line one\n{{ deal.title( }}", "template error on line 2"),
        ("{% for x in y %}never closed", "template error on line 1"),
    ],
)
def test_check_refuses_a_syntax_error_with_a_message(template, message):
    with pytest.raises(ValueError) as refused:
        check(template)
    assert str(refused.value).startswith(message)


def test_template_params_refuse_a_syntax_error_at_save_time():
    with pytest.raises(ValidationError) as refused:
        EntryParams(text="Code: {{ rules.promo.code ")
    [error] = refused.value.errors()
    assert error["loc"] == ("text",)
    assert "template error on line 1" in error["msg"]
