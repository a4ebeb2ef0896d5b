"""SPEC §2 templates: element fields, earlier outputs and system values; sandboxed, bounded output."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from server.errors import ActionError
from server.rules.actions.add_comment import EntryParams
from server.rules.engine import EngineRunContext, render_params
from server.rules import templates
from server.rules.templates import MAX_OUTPUT_CHARS, TemplateLimit, check, render

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


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("[{{deal.nothing}}]", "{{deal.nothing}}: deal has no 'nothing'; write {{deal.nothing|default('')}}"),
        ("[{{ dael.title }}]", "{{dael.title}}: there is no 'dael'"),
        ("[{{rules.later.code}}]", "{{rules.later.code}}: rule 'later' has no output 'code' in this stage run"),
        ("[{{rules.promo.nocode}}]", "{{rules.promo.nocode}}: rule 'promo' has no output 'nocode'"),
        ("[{{deal.company.name}}]", "{{deal.company.name}}: deal.company is empty; write "
                                    "{{deal.company.name|default('')}} or put it inside {% if deal.company %}"),
        ("{% for e in deal.nothing %}{{ e }}{% endfor %}", "{{deal.nothing}}: deal has no 'nothing'"),
        ("{{ deal.nothing ~ '!' }}", "{{deal.nothing}}: deal has no 'nothing'"),
    ],
)
def test_a_missing_value_fails_naming_the_placeholder_and_what_to_write(template, message):
    with pytest.raises(ActionError) as refused:
        render(template, CONTEXT)
    assert str(refused.value).startswith(message)


def test_a_template_that_says_what_to_do_when_empty_renders():
    assert render("[{{deal.company.name|default('no company')}}]", CONTEXT) == "[no company]"
    assert render("[{{deal.nothing|default('')}}]", CONTEXT) == "[]"
    assert render("[{{rules.later.code|d('none yet')}}]", CONTEXT) == "[none yet]"
    assert render("{% if deal.company %}{{deal.company.name}}{% else %}none{% endif %}", CONTEXT) == "none"
    assert render("{% if deal.company.name is defined %}x{% endif %}{{ 'y' if not rules.later }}", CONTEXT) == "y"


def test_empty_field_values_render_empty():
    # A field that exists but has no value (a deal without close date, a contact without phone)
    # renders empty, not as the text "None".
    assert render("[{{deal.contact.phone}}]", CONTEXT) == "[]", "an empty phone must not render as 'None'"
    assert render("[{{deal.close_date}}]", CONTEXT) == "[]"


async def test_template_params_render_before_the_action_runs():
    params = EntryParams(text="Deal {{deal.title}}: code {{rules.promo.code}}")
    ctx = EngineRunContext(run=None, element_type="deal", element=None, actor_id=None, load_context=_context)  # type: ignore[arg-type]
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
    """Dunder access and unknown globals are refused (ActionError); never a class or module."""
    with pytest.raises(ActionError) as refused:
        render(template, CONTEXT)
    assert any(word in str(refused.value) for word in ("unsafe", "could not be rendered", "there is no"))


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
        render("{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}", CONTEXT)
    with pytest.raises(ActionError, match="template output exceeds 65536 characters"):
        render("{% set x %}{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}", CONTEXT)
    with pytest.raises(ActionError, match="template limit: \\* would build 120000 characters, more than 65536"):
        render("{{ deal.title * 10000 }}", CONTEXT)


def test_output_at_the_limit_is_fine():
    assert len(render("{{ 'x' * 65536 }}", CONTEXT)) == 65_536


def test_a_broken_template_at_run_time_fails_the_run():
    with pytest.raises(ActionError, match="template could not be rendered"):
        render("{{ deal.title ", CONTEXT)


# ---------------------------------------------------------------- check at save time


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("Hello {{ deal.contact.name }}, {% if deal.amount %}{{ deal.amount }}{% endif %}", "Hello Bea, 5000.00"),
        ("no placeholders at all", "no placeholders at all"),
    ],
)
def test_check_accepts_valid_templates(template, rendered):
    """Saved as written (no error, nothing rewritten), and the run renders what the designer wrote."""
    assert check(template) is None
    assert EntryParams(text=template).text == template
    assert render(template, CONTEXT) == rendered


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


# ---------------------------------------------------------------- bounded work (issue 9, item 4)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
         "template limit: more than 10000 loop steps in one render"),
        ("{% for a in deal.title %}{% for b in deal.title %}{% for c in deal.title %}{% for d in deal.title %}"
         "{% endfor %}{% endfor %}{% endfor %}{% endfor %}", "template limit: more than 10000 loop steps in one render"),
        ("{{ range(100000)|list|length }}", "template limit: range() of 100000 items, more than 10000"),
        ("{{ 'x'|center(100000000) }}", "template limit: center would build 100000000 characters, more than 65536"),
        ("{{ ('x'|center(100000000))|length }}", "template limit: center would build 100000000 characters"),
        ("{{ 'x'.ljust(100000000)|length }}", "template limit: ljust would build 100000000 characters"),
        ("{{ 'x'|indent(100000000)|length }}", "template limit: indent would build 100000001 characters"),
        ("{{ ('%100000000s' % 'x')|length }}", "template limit: % would build"),
        ("{{ ('%*s' % (100000000, 'x'))|length }}", "template limit: % would build"),
        ("{{ ('%.100000000f' % 1.5)|length }}", "template limit: % would build"),
        ("{{ '%100000000s'|format('x')|length }}", "template limit: format would build"),
        ("{{ '{:>100000000}'.format('x')|length }}", "template limit: format would build 100000000 characters"),
        ("{{ ('x' * 100000000)|length }}", "template limit: * would build 100000000 characters"),
        ("{{ ([1] * 100000000)|length }}", "template limit: * would build 100000000 characters"),
        ("{{ (9 ** 99999999)|string|length }}", "template limit: ** gives a number of more than 10000 bits"),
        ("{{ ('x' * 60000)|replace('x', 'x' * 60000)|length }}", "template limit: replace would build 3600000000"),
        ("{{ range(10000)|join('x' * 60000)|length }}", "template limit: join would build"),
        ("{{ [1]|batch(100000000, 'x')|list|length }}", "template limit: batch would build 100000000 characters"),
        ("{{ 'x'|slice(100000000)|list|length }}", "template limit: slice would build 100000000 characters"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
         "{{ ns.s|length }}", "template limit: ~ would build 131072 characters"),
        ("{{ range(10000)|map('center', 60000)|list|length }}", "template limit: the render builds more than 1000000"),
    ],
)
def test_work_over_a_limit_fails_before_it_is_done(template, message):
    """The probes of issue 9: each is refused with the limit named, before the string or the loop exists."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimit) as refused:
            render(template, CONTEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value).startswith(message)
    assert peak < 20_000_000, f"the render allocated {peak} bytes before it was refused"


def test_work_within_the_limits_renders():
    assert render("{{ 'x'|center(9) }}|{{ '%05.1f'|format(3.14159) }}|{{ '{:>5}'.format('ab') }}", CONTEXT) == (
        "    x    |003.1|   ab")
    assert render("{% for i in range(3) %}{% for j in range(3) %}{{ i * j }}{% endfor %}{% endfor %}", CONTEXT) == (
        "000012024")
    assert render("{{ deal.amount * 2 }} {{ [deal.title, deal.contact.name]|join(', ') }} {{ 2 ** 10 }}", CONTEXT) == (
        "10000.00 Acme rollout, Bea 1024")
    assert render("{{ deal.title|replace('Acme', 'ACME')|upper }} {{ 'a-b'.split('-')|join('+') }}", CONTEXT) == (
        "ACME ROLLOUT a+b")


def test_a_render_over_its_time_budget_fails(monkeypatch):
    monkeypatch.setattr(templates, "MAX_RENDER_MS", 50)
    context = {**CONTEXT, "deal": {**DEAL, "notes": "word " * 12_000}}
    with pytest.raises(TemplateLimit, match="template limit: the render took longer than 50 ms"):
        render("{% for i in range(10000) %}{% if deal.notes|wordcount > 0 %}{% endif %}{% endfor %}", context)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{% macro %} is not available in rule templates"),
        ("{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}", "recursive loops are not available"),
        ("{% include 'other' %}", "{% include %} is not available"),
        ("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "template"),
        ("x" * 20_001, "template is longer than 20000 characters"),
    ],
)
def test_check_refuses_what_could_repeat_without_a_loop_step(template, message):
    with pytest.raises(ValueError) as refused:
        check(template)
    assert message in str(refused.value)


def test_lipsum_is_not_available():
    with pytest.raises(ActionError, match="there is no 'lipsum'"):
        render("{{ lipsum(100000) }}", CONTEXT)


async def test_render_async_leaves_the_event_loop_free(monkeypatch):
    """A render that uses its whole time budget runs off the loop: the loop keeps ticking meanwhile."""
    import asyncio
    import time

    context = {**CONTEXT, "deal": {**DEAL, "notes": "word " * 12_000}}
    heavy = "{% for i in range(10000) %}{% if deal.notes|wordcount > 0 %}{% endif %}{% endfor %}"
    render_task = asyncio.ensure_future(templates.render_async(heavy, context))
    gaps, last = [], time.monotonic()
    while not render_task.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    with pytest.raises(TemplateLimit, match="took longer than 1000 ms"):
        render_task.result()
    assert len(gaps) > 20 and max(gaps) < 0.5, f"the loop stalled for {max(gaps):.2f} s during the render"
