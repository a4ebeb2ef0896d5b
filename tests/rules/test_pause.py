"""Pausing a rule: its due runs wait with the reason shown and go on resume; failures in a row pause it."""

import pytest

from server.actor import SYSTEM
from server.errors import TransientActionError
from server.kinds import Role, RunStatus
from server.models import Notification, Rule, RuleRun
from server.services import elements as element_service
from server.services import reruns as rerun_service
from server.services.access import Actor
from tests.rules.test_engine import comments
from tests.support import add_rule, make_pipeline, make_user, wait_for_runs, wait_until


@pytest.mark.production_backend
async def test_runs_due_while_a_rule_is_paused_wait_with_the_reason_and_go_on_resume(db):
    maria = await make_user("Maria", role="admin")
    actor = Actor(user_id=maria.id, role=Role.admin)
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "hello"})
    await rerun_service.pause_rule(rule.id, actor=actor)

    deal = await element_service.create_element("deal", {"title": "held"}, stage_id=stages["offer"].id, actor=SYSTEM)

    async def held() -> RuleRun | None:
        run = await RuleRun.get(element_id=deal.id, rule_id=rule.id)
        return run if run.reason and run.reason.startswith("rule paused by Maria at ") else None

    run = await wait_until(held, timeout_s=10, what="the run to say the rule is paused")
    assert run.status == RunStatus.scheduled and await comments(deal.id) == []

    await rerun_service.resume_rule(rule.id, actor=actor)

    [done] = await wait_for_runs("deal", deal.id, 1)
    assert done.status == RunStatus.succeeded and await comments(deal.id) == ["hello"]
    assert (await Rule.get(id=rule.id)).paused_at is None


async def test_a_rule_failing_five_times_in_a_row_pauses_itself_and_tells_the_admins(db, monkeypatch):
    from server import config
    from server.rules.actions.add_comment import AddComment

    async def down(self, ctx, params):
        raise TransientActionError("peer unavailable")

    monkeypatch.setattr(AddComment, "execute", down)
    monkeypatch.setenv("PIPEWRIGHT_MAX_ATTEMPTS", "1")
    config.reload()
    admin = await make_user("Ada", role="admin")
    await make_user("Emil", role="employee")
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "never"})
    deals = [await element_service.create_element("deal", {"title": f"d{n}"}, stage_id=stages["offer"].id,
                                                  actor=SYSTEM) for n in range(5)]
    for deal in deals:
        await wait_for_runs("deal", deal.id, 1)

    paused = await Rule.get(id=rule.id)
    assert paused.paused_at is not None and paused.paused_by_id is None
    assert "its last 5 runs failed" in paused.pause_reason and "peer unavailable" in paused.pause_reason
    [note] = await Notification.filter(text__contains="paused itself")
    assert note.recipient_id == admin.id and "5 failures in a row" in note.text

    sixth = await element_service.create_element("deal", {"title": "d6"}, stage_id=stages["offer"].id, actor=SYSTEM)

    async def held() -> RuleRun | None:
        run = await RuleRun.get(element_id=sixth.id)
        return run if run.reason == paused.pause_reason else None

    assert (await wait_until(held, timeout_s=10, what="the sixth run to wait")).status == RunStatus.scheduled


async def test_a_success_between_failures_does_not_pause(db, monkeypatch):
    from server import config
    from server.rules.actions.add_comment import AddComment

    real = AddComment.execute

    async def flaky(self, ctx, params):
        if ctx.element.title != "ok":
            raise TransientActionError("peer unavailable")
        return await real(self, ctx, params)

    monkeypatch.setattr(AddComment, "execute", flaky)
    monkeypatch.setenv("PIPEWRIGHT_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PIPEWRIGHT_PAUSE_AFTER_FAILURES", "3")
    config.reload()
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "x"})
    for title in ("bad", "bad", "ok", "bad", "bad"):
        deal = await element_service.create_element("deal", {"title": title}, stage_id=stages["offer"].id, actor=SYSTEM)
        await wait_for_runs("deal", deal.id, 1)

    assert (await Rule.get(id=rule.id)).paused_at is None


@pytest.mark.production_backend
async def test_pausing_twice_or_resuming_a_running_rule_says_so(db):
    from server.errors import ValidationFailed

    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "x"})
    try:
        await rerun_service.resume_rule(rule.id, actor=SYSTEM)
    except ValidationFailed as exc:
        assert exc.errors[0].field == "rule_id" and "is not paused" in exc.errors[0].message
    else:
        raise AssertionError("resumed a rule that was not paused")
    await rerun_service.pause_rule(rule.id, actor=SYSTEM)
    try:
        await rerun_service.pause_rule(rule.id, actor=SYSTEM)
    except ValidationFailed as exc:
        assert "paused already: rule paused by the system at" in exc.errors[0].message
    else:
        raise AssertionError("paused twice")
