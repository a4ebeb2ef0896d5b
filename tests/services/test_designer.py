"""The rule designer offers what the engine accepts: placeholders and condition fields the save check takes,
the operators conditions know, lanes numbered as the runs get them, rules moved one place at a time."""

from typing import get_args

import pytest

from server.errors import Forbidden, ValidationFailed
from server.models import CustomField, RuleRun
from server.rules.conditions import Comparison, Operator
from server.services import designer
from server.services import elements as element_service
from server.services import pipelines as pipeline_service
from server.services import rules as rule_service
from server.services.access import SYSTEM, Actor
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs

ADMIN = Actor(user_id=1, role="admin")


async def test_every_placeholder_and_condition_field_the_form_offers_is_accepted_when_saved(db):
    await CustomField.create(entity_type="deal", code="priority", name="Priority", type="select",
                             options=["low", "high"])
    await CustomField.create(entity_type="contact", code="birthday", name="Birthday", type="date")
    _, stages = await make_pipeline()
    offer = await pipeline_service.load_stage(stages["offer"].id)
    await add_rule(offer, "generate_code", {"length": 6, "digits": True}, key="promo", title="Promo code")
    form = await designer.new_rule_form(offer, designer.action_type("add_comment"), actor=ADMIN)
    offered = [code for code, _ in form.placeholders]
    assert {"{{deal.title}}", "{{deal.priority}}", "{{deal.contact.birthday}}", "{{rules.promo.code}}",
            "{{now}}", "{{today}}"} <= set(offered)
    assert ("{{rules.promo.code}}", "rule “Promo code” · code") in form.placeholders

    await add_rule(offer, "add_comment", {"text": " ".join(offered)}, key="every_placeholder")
    condition = [[{"field": name, "op": "not_empty"} for name in form.condition_fields]]
    await add_rule(offer, "add_comment", {"text": "ok"}, key="every_field", condition=condition)


async def test_a_rule_is_offered_only_the_outputs_of_the_rules_above_it(db):
    _, stages = await make_pipeline()
    first = await add_rule(stages["offer"], "generate_code", {"length": 6}, key="first")
    await add_rule(stages["offer"], "generate_code", {"length": 6}, key="second")

    form = await designer.edit_rule_form(first.id, actor=ADMIN)

    assert not [code for code, _ in form.placeholders if code.startswith("{{rules.")]
    assert not [name for name in form.condition_fields if name.startswith("rules.")]
    assert form.first_rule


def test_the_condition_builder_offers_every_operator_conditions_know():
    assert list(designer.OPERATOR_LABELS) and set(designer.OPERATOR_LABELS) == set(get_args(Operator))
    for op in designer.OPERATOR_LABELS:
        value = None if op in designer.NO_VALUE_OPERATORS else [1, 2] if op in designer.LIST_OPERATORS else 1
        assert Comparison.model_validate({"field": "amount", "op": op, "value": value}).op == op


async def test_the_board_numbers_lanes_as_the_runs_get_them(db):
    _, stages = await make_pipeline()
    for key, lane in (("a", "parallel"), ("b", "after_previous"), ("c", "parallel"), ("d", "after_previous"),
                      ("e", "after_previous"), ("f", "parallel")):
        await add_rule(stages["offer"], "add_comment", {"text": key}, key=key, lane=lane)

    columns = dict((stage.id, cards) for stage, _triggers, cards in await designer.board(stages["offer"].pipeline_id,
                                                                                actor=ADMIN))
    shown = {card.rule.key: card.lane for card in columns[stages["offer"].id]}
    deal = await element_service.create_element("deal", {"title": "Lanes"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await wait_for_runs("deal", deal.id, 6)
    run_lanes = {run.rule_key: run.lane for run in await RuleRun.filter(element_id=deal.id)}

    assert shown == {"a": 1, "b": 1, "c": 2, "d": 2, "e": 2, "f": 3}
    assert shown == {key: lane + 1 for key, lane in run_lanes.items()}


async def test_moving_a_rule_goes_one_place_and_stops_at_the_ends(db):
    _, stages = await make_pipeline()
    a, b, c = [await add_rule(stages["offer"], "add_comment", {"text": k}, key=k) for k in "abc"]

    async def order() -> list[str]:
        return [r.key for r in await rule_service.list_rules(stages["offer"].id)]

    await rule_service.move_rule(c.id, "up", actor=ADMIN)
    assert await order() == ["a", "c", "b"]
    await rule_service.move_rule(a.id, "up", actor=ADMIN)
    assert await order() == ["a", "c", "b"]
    await rule_service.move_rule(b.id, "down", actor=ADMIN)
    assert await order() == ["a", "c", "b"]
    await rule_service.move_rule(a.id, "down", actor=ADMIN)
    assert await order() == ["c", "a", "b"]

    with pytest.raises(ValidationFailed) as refused:
        await rule_service.move_rule(a.id, "sideways", actor=ADMIN)
    assert [e.field for e in refused.value.errors] == ["direction"]
    manager = await make_user("Mia", role="manager")
    with pytest.raises(Forbidden):
        await rule_service.move_rule(a.id, "up", actor=Actor(user_id=manager.id, role="manager"))
    assert await order() == ["c", "a", "b"]
