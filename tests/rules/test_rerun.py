"""Re-running failed runs and backfilling a rule: counted first, then new runs through the normal dispatch,
made due in batches, each effect once.

The action's peer is stood in for by patching the action in this process (as tests/rules/test_retries.py
does): no action of ours calls a remote service inside its run yet.
"""

from datetime import timedelta

import pytest

from server import clock
from server.actor import SYSTEM
from server.errors import TransientActionError, ValidationFailed
from server.kinds import RunStatus
from server.models import RuleRun, StageRun
from server.services import elements as element_service
from server.services import reruns as rerun_service
from server.services import rules as rule_service
from tests.rules.test_engine import comments
from tests.support import add_rule, make_pipeline, wait_until


@pytest.fixture
def peer_down(monkeypatch):
    """The service behind add_comment is unreachable until the test calls the returned `fix`."""
    from server import config
    from server.rules.actions.add_comment import AddComment

    real = AddComment.execute

    async def down(self, ctx, params):
        raise TransientActionError("connection refused by 127.0.0.1:9")

    monkeypatch.setattr(AddComment, "execute", down)
    monkeypatch.setenv("PIPEWRIGHT_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PIPEWRIGHT_PAUSE_AFTER_FAILURES", "0")
    monkeypatch.setenv("PIPEWRIGHT_RERUN_BATCH", "50")
    monkeypatch.setenv("PIPEWRIGHT_RERUN_INTERVAL_MS", "200")
    config.reload()
    return lambda: monkeypatch.setattr(AddComment, "execute", real)


async def finished(rule_id: int, count: int, status: str) -> None:
    async def done() -> bool:
        return await RuleRun.filter(rule_id=rule_id, status=status).count() >= count

    await wait_until(done, timeout_s=60, what=f"{count} {status} runs of rule {rule_id}")


async def test_two_hundred_failed_runs_are_counted_re_run_in_batches_and_each_effect_exists_once(db, peer_down):
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "hello {{deal.title}}"})
    deals = [await element_service.create_element("deal", {"title": f"d{n}"}, stage_id=stages["offer"].id,
                                                  actor=SYSTEM) for n in range(200)]
    await finished(rule.id, 200, RunStatus.failed)
    peer_down()  # the service is back

    plan = await rerun_service.rerun_failed_runs(rule.id, rerun_service.FailedFilter(), confirm=False, actor=SYSTEM)
    assert plan.count == 200 and not plan.scheduled
    assert await RuleRun.filter(rule_id=rule.id).count() == 200  # counting schedules nothing

    plan = await rerun_service.rerun_failed_runs(rule.id, rerun_service.FailedFilter(), confirm=True, expected=200,
                                                 actor=SYSTEM)

    assert plan.scheduled and plan.count == 200
    assert plan.last_due_at - plan.first_due_at == timedelta(milliseconds=3 * 200)  # 4 batches of 50
    await finished(rule.id, 200, RunStatus.succeeded)
    for deal in deals:
        assert await comments(deal.id) == [f"hello {deal.title}"]
    again = await rerun_service.rerun_failed_runs(rule.id, rerun_service.FailedFilter(), confirm=False, actor=SYSTEM)
    assert again.count == 0  # each failed run is re-run once


async def test_the_filter_picks_failed_runs_by_error_text_and_time(db, peer_down):
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "x"})
    for n in range(3):
        await element_service.create_element("deal", {"title": f"d{n}"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await finished(rule.id, 3, RunStatus.failed)
    first = await RuleRun.filter(rule_id=rule.id).order_by("id").first()
    await RuleRun.filter(id=first.id).update(error="timed out")

    def count(**where):
        return rerun_service.rerun_failed_runs(rule.id, rerun_service.FailedFilter(**where), confirm=False,
                                               actor=SYSTEM)

    assert (await count(error_contains="REFUSED")).count == 2
    assert (await count(failed_after=clock.utcnow() + timedelta(minutes=1))).count == 0
    assert (await count(failed_before=clock.utcnow() + timedelta(minutes=1))).count == 3
    with pytest.raises(ValidationFailed, match="the count changed: 3 now, not 2"):
        await rerun_service.rerun_failed_runs(rule.id, rerun_service.FailedFilter(), confirm=True, expected=2,
                                              actor=SYSTEM)


async def test_one_failed_run_is_re_run_once_with_the_rule_as_it_is_now(db, peer_down):
    _, stages = await make_pipeline()
    rule = await add_rule(stages["offer"], "add_comment", {"text": "old"})
    deal = await element_service.create_element("deal", {"title": "d"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await finished(rule.id, 1, RunStatus.failed)
    peer_down()
    await rule_service.update_rule(rule.id, rule_service.RuleInput(params={"text": "fixed"}), actor=SYSTEM)
    [failed] = await RuleRun.filter(rule_id=rule.id)

    new = await rerun_service.rerun_run(failed.id, actor=SYSTEM)

    assert new.stage_run_id == failed.stage_run_id and new.revision == 2
    await finished(rule.id, 1, RunStatus.succeeded)
    assert await comments(deal.id) == ["fixed"]
    with pytest.raises(ValidationFailed, match=f"re-run already, as run {new.id}"):
        await rerun_service.rerun_run(failed.id, actor=SYSTEM)
    with pytest.raises(ValidationFailed, match="only a failed run can be re-run"):
        await rerun_service.rerun_run(new.id, actor=SYSTEM)


@pytest.mark.production_backend
async def test_a_rule_added_later_is_backfilled_onto_the_elements_already_in_its_stage(db, monkeypatch):
    from server import config

    monkeypatch.setenv("PIPEWRIGHT_RERUN_BATCH", "2")
    monkeypatch.setenv("PIPEWRIGHT_RERUN_INTERVAL_MS", "100")
    config.reload()
    _, stages = await make_pipeline()
    deals = [await element_service.create_element("deal", {"title": f"d{n}"}, stage_id=stages["offer"].id,
                                                  actor=SYSTEM) for n in range(3)]
    elsewhere = await element_service.create_element("deal", {"title": "won"}, stage_id=stages["won"].id, actor=SYSTEM)
    rule = await add_rule(stages["offer"], "add_comment", {"text": "late"})
    later = await element_service.create_element("deal", {"title": "later"}, stage_id=stages["offer"].id, actor=SYSTEM)
    await finished(rule.id, 1, RunStatus.succeeded)  # the one that entered after the rule existed

    plan = await rerun_service.backfill_rule(rule.id, confirm=False, actor=SYSTEM)
    assert plan.count == 3 and not plan.scheduled

    plan = await rerun_service.backfill_rule(rule.id, confirm=True, expected=3, actor=SYSTEM)

    assert plan.count == 3 and plan.last_due_at - plan.first_due_at == timedelta(milliseconds=100)
    await finished(rule.id, 4, RunStatus.succeeded)
    for deal in [*deals, later]:
        assert await comments(deal.id) == ["late"]
    assert await comments(elsewhere.id) == []
    assert (await rerun_service.backfill_rule(rule.id, confirm=False, actor=SYSTEM)).count == 0
    stays = {s.id for s in await StageRun.filter(stage_id=stages["offer"].id)}
    assert {r.stage_run_id for r in await RuleRun.filter(rule_id=rule.id)} == stays
