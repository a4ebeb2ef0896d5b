"""Issue 9, item 9: no silent blanks. A rule naming what its runs will not have is refused when it is
saved (with a did-you-mean); at run time a value that is not there fails the run naming the placeholder,
unless the template says what to do when it is empty."""

import pytest
from starlette.datastructures import FormData

from server.actor import SYSTEM
from server.errors import ValidationFailed
from server.models import CustomField, TimelineEntry
from server.rules.actions import get_action
from server.services import elements as element_service
from server.services import rules as rule_service
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs
from tests.support.clients import work
from web import rule_form


def errors_of(refused: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in refused.value.errors}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {{deal.no_such_field}}", "{{deal.no_such_field}}: deal has no field 'no_such_field'"),
        ("Hi {{deal.titel}}", "{{deal.titel}}: deal has no field 'titel'; did you mean 'deal.title'?"),
        ("Hi {{dael.title}}", "{{dael.title}}: unknown name 'dael'; did you mean 'deal'?"),
        ("Hi {{rules.nokey.code}}", "{{rules.nokey.code}}: no rule above this one in the stage has the key 'nokey' "
                                    "(rules above: promo)"),
        ("Hi {{rules.promo.cod}}", "{{rules.promo.cod}}: rule 'promo' has no output 'cod'; did you mean "
                                   "'rules.promo.code'?"),
        ("Hi {{deal.company.nmae}}", "{{deal.company.nmae}}: deal.company has no field 'nmae'; did you mean "
                                     "'deal.company.name'?"),
        ("Hi {{deal.contact.email.x}} {{ deal.responsible.nam }}", "{{deal.responsible.nam}}: deal.responsible has "
                                                                   "no field 'nam'; did you mean 'deal.responsible.name'?"),
        ("{% if deal.amount %}{{ nope }}{% endif %}", "{{nope}}: unknown name 'nope'"),
    ],
)
async def test_unknown_names_are_refused_at_save_with_a_did_you_mean(db, text, message):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True}, key="promo")

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "add_comment", {"text": text}, key="say")

    assert message in errors_of(refused)["params.text"]


async def test_a_filter_block_does_not_hide_its_names(db):
    """`{% filter default(...) %}` filters the block's text, not the names in it: they are still checked."""
    _, stages = await make_pipeline()

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "add_comment",
                       {"text": "{% filter default('-') %}{{deal.titel}}{% endfilter %}"}, key="say")

    assert "{{deal.titel}}: deal has no field 'titel'; did you mean 'deal.title'?" in errors_of(refused)["params.text"]


async def test_known_names_are_accepted(db):
    await CustomField.create(entity_type="deal", code="priority", name="Priority", type="select",
                             options=["low", "high"])
    await CustomField.create(entity_type="company", code="customer_since", name="Customer since", type="date")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True}, key="promo")
    text = (
        "{{deal.title}} {{deal.amount}} {{deal.contact.email}} {{deal.company.name}} {{deal.company.customer_since}}"
        " {{deal.responsible.name}} {{deal.priority}} {{deal.stage.name}} {{deal.pipeline.name}} {{element.title}}"
        " {{title}} {{rules.promo.code}} {{now}} {{today}} {{deal.title.upper()}} {{deal.custom.anything}}"
        " {% for e in deal.contact.emails %}{{ e }}{% endfor %} {% set x = deal.title %}{{ x }}"
    )
    rule = await add_rule(stages["offer"], "add_comment", {"text": text})
    assert rule.params["text"] == text


async def test_rules_below_are_not_above(db):
    """`{{rules.<key>.…}}` names a rule above this one: a rule placed before `promo` cannot read its code."""
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True}, key="promo")

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "add_comment", {"text": "{{rules.promo.code}}"}, position=0)

    assert "no rule above this one in the stage has the key 'promo' (there is no rule above it)" in (
        errors_of(refused)["params.text"])


async def test_a_lead_rule_names_the_lead(db):
    _, stages = await make_pipeline("lead", "Leads")
    await add_rule(stages["offer"], "add_comment", {"text": "{{lead.responsible.name}} {{lead.source}}"})

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "add_comment", {"text": "{{deal.title}}"})

    assert errors_of(refused)["params.text"] == (
        "{{deal.title}}: unknown name 'deal' (names start with lead., rules., or are now / today)")


async def test_templated_field_values_are_checked_too(db):
    _, stages = await make_pipeline()

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "modify_element", {"fields": {"title": "{{deal.titl}} (copy)"}})

    assert "did you mean 'deal.title'?" in errors_of(refused)["params.fields.title"]


# ---------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("comparison", "field", "message"),
    [
        ({"field": "amount", "op": "gt", "value": "abc"}, "condition.0.0.value",
         "amount is a money field: 'abc' is not a number"),
        ({"field": "amount", "op": "between", "value": [1, "lots"]}, "condition.0.0.value",
         "amount is a money field: 'lots' is not a number"),
        ({"field": "amont", "op": "gt", "value": 5}, "condition.0.0.field",
         "unknown name 'amont'; did you mean 'amount'?"),
        ({"field": "contact.emial", "op": "contains", "value": "@"}, "condition.0.0.field",
         "contact has no field 'emial'; did you mean 'contact.email'?"),
        ({"field": "close_date", "op": "lt", "value": "next week"}, "condition.0.0.value",
         "close_date is a date field: 'next week' is not a date (YYYY-MM-DD)"),
        ({"field": "priority", "op": "eq", "value": "urgent"}, "condition.0.0.value",
         "priority is a select field: 'urgent' is not one of low, high"),
        ({"field": "company", "op": "eq", "value": 3}, "condition.0.0.field", "'company' is a linked record"),
        ({"field": "rules.nokey.code", "op": "not_empty"}, "condition.0.0.field",
         "no rule above this one in the stage has the key 'nokey'"),
    ],
)
async def test_conditions_on_unknown_fields_or_with_values_of_the_wrong_type_are_refused(db, comparison, field,
                                                                                         message):
    await CustomField.create(entity_type="deal", code="priority", name="Priority", type="select",
                             options=["low", "high"])
    _, stages = await make_pipeline()

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "add_comment", {"text": "big"}, condition=[[comparison]])

    assert message in errors_of(refused)[field]


async def test_good_conditions_are_accepted(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True}, key="promo")
    condition = [[{"field": "amount", "op": "gt", "value": "5000"}, {"field": "contact.email", "op": "contains",
                                                                      "value": "@acme"}],
                 [{"field": "company", "op": "not_empty"}, {"field": "rules.promo.code", "op": "not_empty"},
                  {"field": "close_date", "op": "between", "value": ["2024-01-01", "2024-12-31"]},
                  {"field": "stage.code", "op": "eq", "value": "offer"}, {"field": "responsible.id", "op": "in",
                                                                          "value": [1, 2]}]]
    rule = await add_rule(stages["offer"], "add_comment", {"text": "ok"}, condition=condition)
    assert len(rule.condition) == 2


async def test_the_admin_condition_builder_gets_the_error_on_its_value_field(db):
    """The rule form's rows (c.<group>.<row>.field/op/value) reach the same check; the error names the row's
    value input, which the form shows beside it."""
    _, stages = await make_pipeline()
    action = get_action("add_comment")
    form = FormData([("title", "Big deals"), ("p.text", "big"), ("c.0.0.field", "amount"), ("c.0.0.op", "gt"),
                     ("c.0.0.value", "abc")])
    data, form_errors = rule_form.parse_rule(action, form)
    assert form_errors == {}

    with pytest.raises(ValidationFailed) as refused:
        await rule_service.create_rule(stages["offer"].id, data, actor=SYSTEM)

    assert errors_of(refused) == {"condition.0.0.value": "amount is a money field: 'abc' is not a number"}


# ---------------------------------------------------------------- at run time


async def test_a_missing_linked_record_fails_the_run_saying_what_to_write(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Deal for {{deal.company.name}}"}, key="bare")
    await add_rule(stages["offer"], "add_comment",
                   {"text": "Deal for {{deal.company.name|default('no company')}}"
                            "{% if deal.company %} ({{deal.company.phone}}){% endif %}"}, key="careful")
    deal = await element_service.create_element("deal", {"title": "No company"}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = {r.rule_key: r for r in await wait_for_runs("deal", deal.id, 2)}

    assert runs["bare"].status == "failed" and runs["bare"].attempts == 1
    assert runs["bare"].error == ("{{deal.company.name}}: deal.company is empty; write "
                                  "{{deal.company.name|default('')}} or put it inside {% if deal.company %}…{% endif %}")
    assert runs["careful"].status == "succeeded"
    texts = [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")]
    assert texts == ["Deal for no company"]


async def test_an_output_that_is_not_there_fails_the_run_naming_it(db):
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "generate_code", {"length": 6, "digits": True}, key="promo",
                   condition=[[{"field": "amount", "op": "gt", "value": 1000}]])
    await add_rule(stages["offer"], "add_comment", {"text": "Code {{rules.promo.code}}"}, key="say",
                   lane="after_previous")
    deal = await element_service.create_element("deal", {"title": "Small", "amount": 10}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = {r.rule_key: r for r in await wait_for_runs("deal", deal.id, 2)}

    assert runs["promo"].status == "skipped"
    assert runs["say"].status == "failed" and runs["say"].attempts == 1
    assert runs["say"].error.startswith("{{rules.promo.code}}: rule 'promo' has no output 'code' in this stage run")


async def test_a_custom_field_without_a_value_renders_empty(db):
    await CustomField.create(entity_type="deal", code="contract_number", name="Contract number", type="string")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "Contract [{{deal.contract_number}}]"})
    deal = await element_service.create_element("deal", {"title": "No number"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded", run.error
    texts = [e.text for e in await TimelineEntry.filter(element_type="deal", element_id=deal.id, kind="comment")]
    assert texts == ["Contract []"]


async def test_the_names_checked_at_save_are_the_names_a_run_gets(db):
    """`placeholders.element_record` describes what `elements.build_context` builds: same names, same links."""
    from server.models import Company, Contact
    from server.rules import elements, placeholders

    for entity_type, code in (("deal", "priority"), ("contact", "position"), ("company", "customer_since")):
        await CustomField.create(entity_type=entity_type, code=code, name=code, type="string")
    _, stages = await make_pipeline()
    company = await Company.create(name="Acme")
    contact = await Contact.create(name="Bea", emails=work("bea@acme.example"))
    owner = await make_user()
    deal = await element_service.create_element("deal", {"title": "Shape", "company": company.id, "responsible": owner.id},
                                                stage_id=stages["offer"].id, contact_ids=[contact.id], actor=SYSTEM)

    built = await elements.build_context("deal", deal)
    shape = await placeholders.element_record("deal")

    assert set(built) == set(shape.fields)
    for link in ("contact", "company", "responsible", "stage", "pipeline"):
        assert built[link] is not None, link  # every link is there, so each is compared
        assert set(built[link]) == set(shape.fields[link].fields), link
