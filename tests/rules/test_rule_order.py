"""The first rule of a stage has nothing above it to wait for: it starts with the stage, and says so."""

from server.actor import SYSTEM
from server.models import Rule, RuleRun, StageRevision
from server.services import elements as element_service
from server.services import rules as rule_service
from tests.support import add_rule, make_pipeline, wait_for_runs


async def lanes(stage_id: int) -> list[tuple[str, str]]:
    return [(r.key, r.lane) for r in await Rule.filter(stage_id=stage_id).order_by("position", "id")]


async def test_deleting_the_first_rule_makes_the_next_one_start_with_the_stage(db):
    _, stages = await make_pipeline()
    first = await add_rule(stages["offer"], "add_comment", {"text": "first"}, key="first")
    await add_rule(stages["offer"], "add_comment", {"text": "second"}, key="second", lane="after_previous")
    await add_rule(stages["offer"], "add_comment", {"text": "third"}, key="third", lane="after_previous")
    revisions_before = await StageRevision.filter(stage_id=stages["offer"].id).count()

    await rule_service.delete_rule(first.id, actor=SYSTEM)

    assert await lanes(stages["offer"].id) == [("second", "parallel"), ("third", "after_previous")]
    assert await StageRevision.filter(stage_id=stages["offer"].id).count() == revisions_before + 1  # one change
    deal = await element_service.create_element("deal", {"title": "Lanes"}, stage_id=stages["offer"].id, actor=SYSTEM)
    second_run, third_run = await wait_for_runs("deal", deal.id, 2)
    assert (second_run.rule_key, third_run.rule_key) == ("second", "third")
    assert third_run.after_run_id == second_run.id  # the rest of the lane still waits in order
    assert await RuleRun.filter(element_id=deal.id, status="succeeded").count() == 2


async def test_a_waiting_rule_moved_to_the_top_is_stored_as_parallel(db):
    _, stages = await make_pipeline()
    a = await add_rule(stages["offer"], "add_comment", {"text": "a"}, key="a")
    b = await add_rule(stages["offer"], "add_comment", {"text": "b"}, key="b", lane="after_previous")

    await rule_service.reorder_rules(stages["offer"].id, [b.id, a.id], actor=SYSTEM)

    assert await lanes(stages["offer"].id) == [("b", "parallel"), ("a", "parallel")]


async def test_a_first_rule_asked_to_wait_for_the_rule_above_is_saved_as_parallel(db):
    _, stages = await make_pipeline()
    only = await add_rule(stages["offer"], "add_comment", {"text": "alone"}, key="alone", lane="after_previous")

    assert only.lane == "parallel"
    updated = await rule_service.update_rule(only.id, rule_service.RuleInput(lane="after_previous"), actor=SYSTEM)
    assert updated.lane == "parallel"


def test_the_delete_confirmation_names_the_rule_that_will_start_with_the_stage():
    first, waiting = Rule(id=1, title="Call", lane="parallel"), Rule(id=2, title="Follow up", lane="after_previous")
    assert rule_service.first_rule_after([first, waiting], removed_id=1) is waiting
    assert rule_service.first_rule_after([first, waiting], removed_id=2) is None
