"""Retries: transient errors back off and retry from the run table; the last attempt fails the run.

The action's peer is stood in for by patching the action in this process (embedded backend only),
the boundary a real SMTP server or SMS gateway will take in the channels issue.
"""

from server import clock
from server.actor import SYSTEM
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, wait_for_runs
from tests.rules.test_engine import comments


async def test_transient_errors_retry_with_backoff_then_succeed(db, monkeypatch):
    """The action's peer fails twice (as an SMTP server that is down would), then answers."""
    from server.errors import TransientActionError
    from server.rules.actions.add_comment import AddComment

    calls = []
    real_execute = AddComment.execute

    async def flaky(self, ctx, params):
        calls.append(clock.utcnow())
        if len(calls) <= 2:
            raise TransientActionError("peer unavailable")
        return await real_execute(self, ctx, params)

    monkeypatch.setattr(AddComment, "execute", flaky)
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "third time lucky"})
    deal = await element_service.create_element("deal", {"title": "retry"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "succeeded" and run.attempts == 3
    assert await comments(deal.id) == ["third time lucky"]
    gaps = [(b - a).total_seconds() for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # PIPEWRIGHT_RETRY_BASE_MS=200, doubled per attempt


async def test_transient_errors_fail_the_run_after_the_last_attempt(db, monkeypatch):
    from server.errors import TransientActionError
    from server.rules.actions.add_comment import AddComment

    async def down(self, ctx, params):
        raise TransientActionError("peer unavailable")

    monkeypatch.setattr(AddComment, "execute", down)
    monkeypatch.setenv("PIPEWRIGHT_MAX_ATTEMPTS", "2")
    from server import config

    config.reload()
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "never"})
    deal = await element_service.create_element("deal", {"title": "down"}, stage_id=stages["offer"].id, actor=SYSTEM)

    [run] = await wait_for_runs("deal", deal.id, 1)

    assert run.status == "failed" and run.attempts == 2
    assert "peer unavailable" in run.error and "gave up after 2 attempts" in run.error
