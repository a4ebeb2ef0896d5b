"""Revisions of a stage: every change to its rules or triggers, who made it, the diff between two, rollback."""

import pytest

from server.actor import SYSTEM
from server.models import Rule, Trigger
from server.rules.revisions import FieldChange
from server.services import elements as element_service
from server.services import revisions as revision_service
from server.services import rules as rule_service
from server.services import triggers as trigger_service
from server.services.access import Actor
from tests.rules.test_engine import comments
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs


async def admin() -> Actor:
    from server.kinds import Role

    user = await make_user("Maria", role="admin")
    return Actor(user_id=user.id, role=Role.admin)


@pytest.mark.production_backend
async def test_a_rule_changed_three_times_has_three_revisions_a_diff_and_a_rollback(db):
    maria = await admin()
    _, stages = await make_pipeline()
    offer = stages["offer"]
    rule = await rule_service.create_rule(offer.id, rule_service.RuleInput(
        action_type="add_comment", params={"text": "v1"}), actor=maria)
    before = await element_service.create_element("deal", {"title": "early"}, stage_id=offer.id, actor=SYSTEM)
    await wait_for_runs("deal", before.id, 1)
    await rule_service.update_rule(rule.id, rule_service.RuleInput(params={"text": "v2"}), actor=maria)
    await rule_service.update_rule(rule.id, rule_service.RuleInput(params={"text": "v3"}, enabled=False), actor=maria)

    history = await revision_service.stage_revisions(offer.id, actor=maria)

    assert [r.number for r in history] == [3, 2, 1]
    assert [r.note for r in history] == ["rule “Add comment” changed"] * 2 + ["rule “Add comment” added"]
    assert {r.author_id for r in history} == {maria.user_id}
    diff = await revision_service.revision_diff(offer.id, 1, 3, actor=maria)
    assert not diff.rules.added and not diff.rules.removed
    [changed] = diff.rules.changed
    assert changed.changes == [FieldChange("params.text", "v1", "v3"), FieldChange("enabled", True, False)]

    rolled = await revision_service.rollback_stage(offer.id, 1, actor=maria)

    assert rolled.number == 4 and rolled.note == "rolled back to revision 1"
    restored = await Rule.get(id=rule.id)
    assert restored.params["text"] == "v1" and restored.enabled
    assert (await revision_service.revision_diff(offer.id, 1, 4, actor=maria)).rules.changed == []
    [early] = await element_service.rule_runs("deal", before.id, actor=SYSTEM)
    assert (await early.stage_run).revision == 1 and early.spec["params"]["text"] == "v1"
    assert await comments(before.id) == ["v1"]


@pytest.mark.production_backend
async def test_a_deleted_rule_comes_back_with_its_id_and_a_newer_rule_goes(db):
    _, stages = await make_pipeline()
    offer = stages["offer"]
    kept = await add_rule(offer, "add_comment", {"text": "kept"})
    gone = await add_rule(offer, "add_comment", {"text": "gone"}, key="gone")
    await rule_service.delete_rule(gone.id, actor=SYSTEM)
    newer = await add_rule(offer, "add_comment", {"text": "newer"}, key="gone")  # takes the deleted one's key

    diff = await revision_service.revision_diff(offer.id, 2, 4, actor=SYSTEM)
    assert [r["id"] for r in diff.rules.added] == [newer.id] and [r["id"] for r in diff.rules.removed] == [gone.id]

    await revision_service.rollback_stage(offer.id, 2, actor=SYSTEM)

    assert [(r.id, r.key, r.params["text"]) for r in await Rule.filter(stage_id=offer.id).order_by("position")] == [
        (kept.id, kept.key, "kept"), (gone.id, "gone", "gone")]


@pytest.mark.production_backend
async def test_a_change_to_a_stages_triggers_is_a_revision_and_rolls_back(db):
    _, stages = await make_pipeline()
    won = stages["won"]
    trigger = await trigger_service.create_trigger(won.id, trigger_service.TriggerInput(
        trigger_type="payment_received", settings={"min_amount": 100}), actor=SYSTEM)
    await trigger_service.update_trigger(trigger.id, trigger_service.TriggerInput(
        settings={"min_amount": 500}, allow_back=True), actor=SYSTEM)
    hook = await trigger_service.create_trigger(won.id, trigger_service.TriggerInput(trigger_type="webhook"), actor=SYSTEM)

    history = await revision_service.stage_revisions(won.id, actor=SYSTEM)
    assert [r.note for r in history][:2] == ["trigger “Inbound webhook” added", f"trigger “{trigger.name}” changed"]
    diff = await revision_service.revision_diff(won.id, 1, 3, actor=SYSTEM)
    assert [t["id"] for t in diff.triggers.added] == [hook.id]
    assert [c.name for c in diff.triggers.changed[0].changes] == ["settings.min_amount", "allow_back"]
    assert "token" not in diff.triggers.added[0]  # the webhook's secret is not configuration

    await revision_service.rollback_stage(won.id, 1, actor=SYSTEM)

    [back] = await Trigger.filter(stage_id=won.id)
    assert back.id == trigger.id and back.settings["min_amount"] == "100" and not back.allow_back


@pytest.mark.production_backend
async def test_rolling_back_to_an_unknown_or_the_current_revision_names_the_field(db):
    from server.errors import ValidationFailed

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "v1"})
    for number, message in ((7, "has no revision 7"), (1, "already the one in force")):
        try:
            await revision_service.rollback_stage(stages["offer"].id, number, actor=SYSTEM)
        except ValidationFailed as exc:
            assert exc.errors[0].field == "to_revision" and message in exc.errors[0].message
        else:
            raise AssertionError("rollback accepted")
